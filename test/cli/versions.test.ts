import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiraClient } from '../../sdk/src/index.ts';
import { createKey } from '../../src/api/keys.ts';
import { countImagesByStatus } from '../../src/db/queries/images.ts';
import { renderScene, sampleScenes } from '../../src/scenes/index.ts';
import { unique, useServer } from '../api/server.ts';
import { bundleCopy } from '../inference/helpers.ts';
import { twoVersions } from '../reextract/helpers.ts';
import { eventually } from '../support/context.ts';
import { REPO } from '../support/env.ts';
import { runMira } from '../support/mira-process.ts';

/**
 * `mira models activate` and `mira collections reextract | rollback | delete-version` as a user
 * runs them, in a child process: on the embedded store (jobs run in the command, which follows
 * them) and against a running server (--api, through the SDK).
 */
const server = useServer({ MIRA_CAPTION_ON_INGEST: 'false' });
const N = 5;

let dir: string;
let folder: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mira-cli-versions-'));
  folder = join(dir, 'photos');
  await mkdir(folder);
  for (const [i, r] of sampleScenes(61, N).entries()) await writeFile(join(folder, `s${i}.png`), await renderScene(r.scene, { size: 64, layout: r.layout }));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function mira(args: string[], env: Record<string, string>) {
  const r = await runMira(args, env, 240_000);
  let json: any;
  try {
    json = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '');
  } catch {
    json = undefined;
  }
  return { ...r, json, shown: `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr.slice(-3000)}` };
}

describe('mira on the embedded store', () => {
  it('a new bundle version activated: the command follows the re-extraction; rollback and delete-version', async () => {
    const name = unique('cli-model');
    const b1 = await bundleCopy((m) => Object.assign(m, { name, version: '1' }));
    const b2 = await bundleCopy((m) => Object.assign(m, { name, version: '2' }), resolve(REPO, 'models/default'));
    try {
      const base = { MIRA_DATA_DIR: join(dir, 'data'), MIRA_CAPTION_ON_INGEST: 'false' };
      const v1 = { ...base, MIRA_MODEL_DIR: b1.dir };
      const v2 = { ...base, MIRA_MODEL_DIR: b2.dir }; // the new version deployed: registered at startup
      const collection = unique('cli-versions');
      const ingest = await mira(['ingest', folder, '--collection', collection, '--json'], v1);
      expect(ingest.json, ingest.shown).toMatchObject({ added: N, ready: N });

      const activate = await mira(['models', 'activate', `${name}@2`, '--json'], v2);
      expect(activate.code, activate.shown).toBe(0);
      expect(activate.json, activate.shown).toMatchObject({ model: `${name}@2`, jobs: [{ collection, state: 'completed', result: { switched: true, from: `${name}@1`, to: `${name}@2`, images: N } }] });
      const search = await mira(['search', 'a red circle', '--collection', collection, '--no-rerank', '--json'], v2);
      expect(search.json, search.shown).toMatchObject({ model: `${name}@2` });
      expect(search.json.results, search.shown).toHaveLength(N);

      const refused = await mira(['collections', 'delete-version', collection, '--model', `${name}@2`], v2);
      expect(refused.code, refused.shown).toBe(1);
      expect(refused.stderr, refused.shown).toMatch(/is the version collection .* is searched by/);
      const back = await mira(['collections', 'rollback', collection, '--json'], v2);
      expect(back.json, back.shown).toMatchObject({ name: collection, embedder: `${name}@1`, previousEmbedder: `${name}@2` });
      const gone = await mira(['collections', 'delete-version', collection, '--model', `${name}@2`, '--json'], v2);
      expect(gone.json, gone.shown).toMatchObject({ embedder: `${name}@1`, previousEmbedder: null, deleted: N });
      const unknown = await mira(['collections', 'reextract', collection, '--model', 'nope@9'], v2);
      expect(unknown.code, unknown.shown).toBe(2);
      expect(unknown.stderr, unknown.shown).toMatch(/--model: .*nope@9/);
    } finally {
      await b1.cleanup();
      await b2.cleanup();
    }
  }, 600_000);

  it('a missing --model is a usage error naming the flag (exit 2)', async () => {
    const r = await mira(['collections', 'reextract', 'x'], { MIRA_DATA_DIR: join(dir, 'data') });
    expect(r.code, r.shown).toBe(2);
    expect(r.stderr, r.shown).toMatch(/missing --model/);
  });
});

describe('mira against a running server (--api)', () => {
  it('reextract follows the job to the switch; rollback; deleting the active version is refused', async () => {
    const { admin, db, ctx, url } = server();
    const versions = await twoVersions(ctx);
    try {
      const { v1, v2 } = versions;
      const col = await MiraClient.data(admin.api.POST('/v1/collections', { body: { name: unique('cli-versions-api'), embedder: v1.id } }));
      for (const r of sampleScenes(62, N)) await admin.uploadImage(col.id, await renderScene(r.scene, { size: 64, layout: r.layout }));
      await eventually('images ready', async () => ((await countImagesByStatus(db, col.id)).ready === N ? true : undefined), 60_000);
      const env = { MIRA_API_URL: url, MIRA_API_KEY: (await createKey(db, { name: unique('cli-key'), scopes: ['admin'], collections: null })).key };

      const re = await mira(['collections', 'reextract', col.name, '--model', v2.id, '--json'], env);
      expect(re.code, re.shown).toBe(0);
      expect(re.json, re.shown).toMatchObject({ jobs: [{ collection: col.name, state: 'completed', result: { switched: true, to: v2.id, images: N } }] });
      const refused = await mira(['collections', 'delete-version', col.name, '--model', v2.id], env);
      expect(refused.code, refused.shown).toBe(1);
      expect(refused.stderr, refused.shown).toMatch(/409 version_active/);
      const back = await mira(['collections', 'rollback', col.name, '--json'], env);
      expect(back.json, back.shown).toMatchObject({ embedder: v1.id, previousEmbedder: v2.id });
    } finally {
      await versions.cleanup();
    }
  }, 300_000);
});
