import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnv, ROOT } from '../../src/config.ts';
import { openDatabaseFor } from '../../src/db/client.ts';
import { getCollection } from '../../src/db/queries/collections.ts';
import { countImagesByStatus } from '../../src/db/queries/images.ts';
import { parseCaption } from '../../src/scenes/captions.ts';
import { eventually } from '../support/context.ts';
import { runMira, spawnMira, type MiraProcess } from '../support/mira-process.ts';
import { privateDatabase } from '../support/private-services.ts';

/**
 * `npm run demo` is `mira demo`: the README's first command. Here it runs as a user runs it, in a
 * child process on a fresh data folder with no Postgres and no Redis (PGlite), with the default
 * model, on fewer scenes (--n). Twice: the second run adds nothing. Then serving: /readyz, a search
 * through the API, the web UI, and a clean stop on Ctrl-C.
 */
const N = 60;
const base = { MIRA_MODEL_DIR: resolve(ROOT, 'models/default'), MIRA_AUTH: '', MIRA_HOST: '', MIRA_PORT: '' };

const shown = (r: { code: number | null; stdout: string; stderr: string }) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr.slice(-4000)}`;

/** The images of a collection by status, read from the store after the demo has exited. */
async function imageCounts(env: Record<string, string>, collection: string) {
  const database = await openDatabaseFor(loadEnv(env as NodeJS.ProcessEnv));
  try {
    const c = await getCollection(database.db, { name: collection });
    return c ? await countImagesByStatus(database.db, c.id) : undefined;
  } finally {
    await database.close();
  }
}

/** The first line the child prints on stdout; rejects with its output if it exits first. */
function firstLine(p: MiraProcess): Promise<string> {
  return new Promise((done, fail) => {
    const look = () => {
      const { stdout } = p.output();
      if (stdout.includes('\n')) done(stdout.slice(0, stdout.indexOf('\n')));
    };
    p.child.stdout!.on('data', look);
    void p.exited.then(({ code, signal }) => fail(new Error(shown({ code: code ?? (signal as unknown as number), ...p.output() }))));
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mira-demo-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('mira demo, embedded (PGlite, jobs in-process)', () => {
  const env = () => ({ ...base, MIRA_DATA_DIR: join(dir, 'embedded') });

  it('generates scenes and ingests them into collection demo with progress bars, then finds them by text', async () => {
    const r = await runMira(['demo', '--no-serve', '--n', String(N)], env(), 300_000);
    expect(r.code, shown(r)).toBe(0);
    // Not a terminal here: plain progress lines, ending at N/N.
    for (const bar of ['generating', 'storing', 'extracting']) expect(r.stderr, shown(r)).toMatch(new RegExp(`^${bar} \\[#+\\] ${N}/${N} 100%`, 'm'));
    expect(r.stderr, shown(r)).toContain(`generated ${N} scenes in`);
    expect(r.stdout, shown(r)).toContain(`collection demo: ${N} added, 0 already there, ${N} extracted`);
    expect(r.stdout, shown(r)).toMatch(/search "[^"]+" \(ITC, re-ranked with ITM \+ LM\):\n( {2}-?\d+\.\d{3} {2}.+\n){3}/);
    expect(await imageCounts(env(), 'demo')).toEqual({ ready: N });
  }, 300_000);

  it('adds nothing when run again: same images, the output says so', async () => {
    const r = await runMira(['demo', '--no-serve', '--n', String(N)], env(), 300_000);
    expect(r.code, shown(r)).toBe(0);
    expect(r.stderr, shown(r)).toContain(`reusing ${N} scenes in`);
    expect(r.stdout, shown(r)).toContain(`nothing new: all ${N} scenes were already in collection demo (0 added)`);
    expect(r.stderr, shown(r)).not.toContain('generating [');
    expect(await imageCounts(env(), 'demo')).toEqual({ ready: N });
  }, 300_000);

  it('serves the API and the web UI with --json, answers a search, and stops cleanly on Ctrl-C', async () => {
    const p = spawnMira(['demo', '--n', String(N), '--port', '0', '--json'], env());
    try {
      const report = JSON.parse(await firstLine(p)) as Record<string, any>;
      expect(report, JSON.stringify(report)).toMatchObject({ collection: 'demo', added: 0, duplicates: N, ready: N, failed: 0, scenes: { n: N, generated: false } });
      const url = report.url as string;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      await eventually('/readyz', async () => ((await fetch(`${url}/readyz`)).ok ? true : undefined), 120_000, 200);

      // Embedded on loopback with MIRA_AUTH unset: no key needed.
      const res = await fetch(`${url}/v1/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ collectionId: report.collectionId, text: 'a small red circle', k: 5 }) });
      const body = (await res.json()) as { reranked: boolean; results: { itcScore: number; metadata: { scene?: string } }[] };
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(body.results, JSON.stringify(body)).toHaveLength(5);
      expect(body.reranked).toBe(true);
      // each hit is a demo scene: its metadata holds the scene's caption, in the generator's grammar
      for (const hit of body.results) expect(parseCaption(hit.metadata.scene ?? ''), JSON.stringify(hit)).not.toBeNull();

      const page = await fetch(`${url}/`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);

      p.child.kill('SIGINT');
      const { code, signal } = await p.exited;
      expect({ code, signal }, shown({ code, ...p.output() })).toEqual({ code: 0, signal: null });
    } finally {
      await p.stop();
    }
  }, 300_000);

  it.each([
    [['--n', '0'], '--n'],
    [['--n', 'lots'], '--n'],
    [['--n', '1000000'], '--n'],
    [['--port', 'http'], '--port'],
    [['--colour', 'red'], '--colour'],
    [['extra'], 'extra'],
  ])('refuses %j in one line naming %s, exit 2, touching nothing', async (args, named) => {
    const data = join(dir, 'untouched');
    const r = await runMira(['demo', ...args], { ...base, MIRA_DATA_DIR: data });
    expect(r.code, shown(r)).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines, shown(r)).toHaveLength(1);
    expect(lines[0], shown(r)).toMatch(/^mira demo: /);
    expect(lines[0], shown(r)).toContain(named);
    expect(existsSync(data), 'the data folder was created').toBe(false);
  });
});

const hasPostgres = Boolean(process.env.DATABASE_URL);
describe.skipIf(!hasPostgres)('mira demo with DATABASE_URL (service mode; skipped: DATABASE_URL is not set)', () => {
  // A database of its own: in-process jobs would otherwise also run what other tests left pending.
  let pg: Awaited<ReturnType<typeof privateDatabase>>;
  beforeAll(async () => {
    pg = await privateDatabase(process.env.DATABASE_URL!, 'mira_demo');
  });
  afterAll(() => pg?.drop());
  const env = () => ({ ...base, MIRA_DATA_DIR: join(dir, 'service'), DATABASE_URL: pg.url, REDIS_URL: '' });

  it('says it runs in service mode, ingests into Postgres, and adds nothing the second time (--json)', async () => {
    const run = () => runMira(['demo', '--no-serve', '--n', '20', '--json'], env(), 300_000);
    const first = await run();
    expect(first.code, shown(first)).toBe(0);
    expect(first.stderr, shown(first)).toContain('mira demo: service mode (DATABASE_URL is set), jobs in this process');
    expect(JSON.parse(first.stdout), shown(first)).toMatchObject({ collection: 'demo', added: 20, duplicates: 0, ready: 20 });
    const second = await run();
    expect(second.code, shown(second)).toBe(0);
    expect(JSON.parse(second.stdout), shown(second)).toMatchObject({ collection: 'demo', added: 0, duplicates: 20, ready: 20 });
    expect(await imageCounts(env(), 'demo')).toEqual({ ready: 20 });
  }, 300_000);
});
