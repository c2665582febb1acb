import { apiKeyScopes, createKey, type Scope } from '../../api/keys.ts';
import { loadEnv } from '../../config.ts';
import { openDatabaseFor } from '../../db/client.ts';
import { getCollection } from '../../db/queries/collections.ts';
import { parse, UsageError, type Command } from '../command.ts';

export const keys: Command = {
  summary: 'create an API key (printed once)',
  help: `usage: mira keys create --name NAME [--scopes read,write,admin] [--collections NAME,...] [--json]

The key is printed once; only its hash is stored. Scopes: read (search, get), write (ingest,
delete), admin (models, keys, collections). --collections limits the key to those collections.

examples:
  mira keys create --name ci --scopes read
  mira keys create --name uploader --scopes read,write --collections holidays`,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub !== 'create') throw new UsageError(`unknown subcommand "${sub ?? ''}" (expected: create)`);
    const { values } = parse(rest, { name: { type: 'string' }, scopes: { type: 'string', default: 'read' }, collections: { type: 'string' }, json: { type: 'boolean', default: false } }, false);
    if (!values.name) throw new UsageError('missing --name NAME');
    const scopes = values.scopes.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = scopes.filter((s) => !(apiKeyScopes as readonly string[]).includes(s));
    if (bad.length || scopes.length === 0) throw new UsageError(`--scopes: unknown scope ${bad.join(', ') || '(none)'}; use ${apiKeyScopes.join(', ')}`);
    const env = loadEnv();
    const database = await openDatabaseFor(env);
    try {
      let collections: string[] | null = null;
      if (values.collections) {
        collections = [];
        for (const name of values.collections.split(',').map((s) => s.trim()).filter(Boolean)) {
          const c = await getCollection(database.db, { name });
          if (!c) throw new UsageError(`--collections: no collection named ${name}`);
          collections.push(c.id);
        }
      }
      const created = await createKey(database.db, { name: values.name, scopes: scopes as Scope[], collections });
      if (values.json) console.log(JSON.stringify({ id: created.id, key: created.key, scopes, collections }));
      else {
        console.log(created.key);
        console.error(`key ${created.id} (${scopes.join(', ')}${collections ? `; collections ${values.collections}` : ''}): store it now, it is not shown again`);
      }
    } finally {
      await database.close();
    }
  },
};
