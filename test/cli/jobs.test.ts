/**
 * `mira extract` and `mira jobs` as a user runs them, in a child process: on the embedded store (a
 * private MIRA_DATA_DIR, jobs in that process) and against a running server (--api, through the SDK).
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiraClient } from '../../sdk/src/index.ts';
import { createKey } from '../../src/api/keys.ts';
import { unique, useServer } from '../api/server.ts';
import { sceneFolder } from '../jobs/helpers.ts';
import { runMira } from '../support/mira-process.ts';

const server = useServer();
const N = 5;

let dir: string;
let photos: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mira-cli-jobs-'));
  photos = join(dir, 'photos');
  await mkdir(photos);
  await sceneFolder(N, 21, photos);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function mira(args: string[], env: Record<string, string>) {
  const r = await runMira(args, env, 180_000);
  const lines = r.stdout.trim().split('\n').filter(Boolean);
  const json = lines.flatMap((l) => {
    try {
      return [JSON.parse(l) as unknown];
    } catch {
      return [];
    }
  });
  return { ...r, json, shown: `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr.slice(-3000)}` };
}

/** Rows and columns from a .npy header. */
async function npyShape(file: string): Promise<number[]> {
  const buf = await readFile(file);
  expect(buf.subarray(0, 6).toString('latin1')).toBe('\x93NUMPY');
  const header = buf.subarray(10, 10 + buf.readUInt16LE(8)).toString('latin1');
  expect(header).toContain("'descr': '<f4'");
  return /'shape':\s*\((\d+),\s*(\d+)\)/.exec(header)!.slice(1).map(Number);
}

const targets = {
  embedded: {
    env: async () => ({ MIRA_DATA_DIR: join(dir, 'data') }),
    /** The collection, filled by `mira ingest` (which waits for extraction in this mode). */
    async collection(env: Record<string, string>) {
      const name = unique('cli-extract');
      const r = await mira(['ingest', photos, '--collection', name], env);
      expect(r.code, r.shown).toBe(0);
      return name;
    },
  },
  api: {
    env: async () => ({ MIRA_API_URL: server().url, MIRA_API_KEY: (await createKey(server().db, { name: unique('cli-jobs'), scopes: ['admin'], collections: null })).key }),
    async collection() {
      const { admin, ctx } = server();
      const name = unique('cli-extract');
      const col = await MiraClient.data(admin.api.POST('/v1/collections', { body: { name, embedder: ctx.defaultModel.id } }));
      for (const file of (await readdir(photos)).sort()) {
        const res = await admin.uploadImage(col.id, join(photos, file));
        await admin.waitForImage(res.image.id, { timeoutMs: 60_000 });
      }
      return name;
    },
  },
};

describe.each(Object.keys(targets) as (keyof typeof targets)[])('mira extract and mira jobs (%s)', (target) => {
  it('extracts a collection into --out, then lists, watches and refuses to cancel the finished job', async () => {
    const env = await targets[target].env();
    const name = await targets[target].collection(env);
    const out = join(dir, `out-${target}`);
    const r = await mira(['extract', '--collection', name, '--out', out, '--wait', '--json'], env);
    expect(r.code, r.shown).toBe(0);
    const job = r.json.at(-1) as { id: string; state: string; kind: string; result: { rows: number } };
    expect(job, r.shown).toMatchObject({ kind: 'extract', state: 'completed', result: { rows: N } });
    expect(r.json.slice(0, -1).every((l) => typeof (l as { progress?: unknown }).progress === 'object'), 'progress lines before the job').toBe(true);
    expect(await npyShape(join(out, 'embeddings.npy'))).toEqual([N, server().ctx.defaultModel.embedDim]);
    expect((await readFile(join(out, 'items.jsonl'), 'utf8')).trim().split('\n')).toHaveLength(N);

    const list = await mira(['jobs', 'list', '--json', '--limit', '200'], env);
    expect(list.code, list.shown).toBe(0);
    expect((list.json[0] as { id: string; state: string }[]).find((j) => j.id === job.id), list.shown).toMatchObject({ state: 'completed' });
    const tunes = await mira(['jobs', 'list', '--json', '--limit', '200', '--kind', 'finetune'], env);
    expect(tunes.code, tunes.shown).toBe(0);
    expect((tunes.json[0] as { id: string; kind: string }[]).every((j) => j.kind === 'finetune'), tunes.shown).toBe(true);
    expect((tunes.json[0] as { id: string }[]).some((j) => j.id === job.id), tunes.shown).toBe(false);
    const extracts = await mira(['jobs', 'list', '--json', '--limit', '200', '--kind', 'extract', '--state', 'completed'], env);
    expect((extracts.json[0] as { id: string }[]).some((j) => j.id === job.id), extracts.shown).toBe(true);

    const watch = await mira(['jobs', 'watch', job.id, '--json'], env);
    expect(watch.code, watch.shown).toBe(0);
    expect(watch.json.at(-1), watch.shown).toMatchObject({ id: job.id, state: 'completed', progress: { done: N, total: N } });

    const cancel = await mira(['jobs', 'cancel', job.id], env);
    expect(cancel.code, cancel.shown).toBe(2);
    expect(cancel.stderr.trim().split('\n'), cancel.shown).toEqual([expect.stringMatching(/already finished \(completed\)/)]);

    const unknown = await mira(['jobs', 'watch', 'extract_nope'], env);
    expect(unknown.code, unknown.shown).toBe(2);
  }, 300_000);
});

describe('mira extract on files (embedded)', () => {
  it('extracts a folder given as --manifest, in this process, and prints where the files are', async () => {
    const env = { MIRA_DATA_DIR: join(dir, 'data-files') };
    const r = await mira(['extract', '--manifest', photos, '--chunk', '2'], env);
    expect(r.code, r.shown).toBe(0);
    expect(r.stdout, r.shown).toMatch(new RegExp(`${N} rows × \\d+`));
    const at = /files: (\S+)/.exec(r.stdout)![1]!;
    expect(await npyShape(join(at, 'embeddings.npy'))).toEqual([N, expect.any(Number)]);
  }, 180_000);
});

describe('bad usage', () => {
  it('exits 2 with one line naming the flag, subcommand or manifest line', async () => {
    const bad = join(dir, 'bad.jsonl');
    await writeFile(bad, `${JSON.stringify({ url: 'https://example.com/a.png' })}\n{"path": 3}\n`);
    const env = { MIRA_DATA_DIR: join(dir, 'data-bad') };
    for (const [args, message] of [
      [['jobs'], /missing subcommand/],
      [['jobs', 'watch'], /missing job ID/],
      [['jobs', 'list', '--state', 'sleeping'], /--state must be one of/],
      [['jobs', 'list', '--kind', 'ingest'], /--kind must be one of extract, reextract, finetune, got "ingest"/],
      [['extract'], /give --collection/],
      [['extract', '--manifest', bad, '--api', 'http://127.0.0.1:9'], /bad\.jsonl: Manifest line 2/],
    ] as const) {
      const r = await mira([...args], env);
      expect(r.code, r.shown).toBe(2);
      expect(r.stderr.trim().split('\n'), r.shown).toEqual([expect.stringMatching(message)]);
    }
  }, 120_000);
});
