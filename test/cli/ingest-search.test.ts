import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiraClient } from '../../sdk/src/index.ts';
import { createKey, type Scope } from '../../src/api/keys.ts';
import type { IngestSummary } from '../../src/cli/commands/ingest.ts';
import type { SearchRow } from '../../src/cli/backend.ts';
import { unique, useServer } from '../api/server.ts';
import { runMira } from '../support/mira-process.ts';

/**
 * `mira ingest` and `mira search` as a user runs them, in a child process: on the embedded store
 * (a private MIRA_DATA_DIR) and against a running server (--api / MIRA_API_URL, through the SDK).
 * Both print the same summary and results; the server's problem codes are the refusal reasons.
 */
const server = useServer();

const png = (r: number, g: number, b: number) => sharp({ create: { width: 32, height: 32, channels: 3, background: { r, g, b } } }).png().toBuffer();

let dir: string;
let folder: string;
let manifest: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mira-cli-'));
  folder = join(dir, 'photos');
  await mkdir(folder);
  const a = await png(220, 40, 40);
  await writeFile(join(folder, 'a.png'), a);
  await writeFile(join(folder, 'b.png'), await png(40, 220, 40));
  await writeFile(join(folder, 'c.png'), await png(40, 40, 220));
  await writeFile(join(folder, 'copy-of-a.png'), a);
  await writeFile(join(folder, 'notes.jpg'), 'not an image at all');
  manifest = join(folder, 'batch.jsonl');
  await writeFile(manifest, [JSON.stringify({ path: 'b.png', metadata: { album: 'green' } }), JSON.stringify({ url: 'http://127.0.0.1:9/x.png' })].join('\n') + '\n');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const keyOf = async (scopes: Scope[]) => (await createKey(server().db, { name: unique('cli-key'), scopes, collections: null })).key;

interface Target {
  env(): Promise<Record<string, string>>;
  /**
   * Makes the collection where the CLI would make it with the active model: the server's database
   * may be shared with tests that activate other models. The embedded store is the CLI's own.
   */
  prepare(name: string): Promise<void>;
  /** The `source` an image read from this file carries. */
  sourceOf(file: string): string;
}

const targets: Record<'embedded' | 'api', Target> = {
  embedded: {
    env: async () => ({ MIRA_DATA_DIR: join(dir, 'data') }),
    prepare: async () => {},
    sourceOf: (file) => join(folder, file),
  },
  api: {
    env: async () => ({ MIRA_API_URL: server().url, MIRA_API_KEY: await keyOf(['admin']) }),
    prepare: async (name) => {
      const model = server().ctx.defaultModel.id;
      await MiraClient.data(server().admin.api.POST('/v1/collections', { body: { name, embedder: model, reranker: model, captioner: model } }));
    },
    sourceOf: (file) => `upload:${file}`,
  },
};

async function mira(args: string[], env: Record<string, string>) {
  const r = await runMira(args, env);
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  let json: unknown;
  try {
    json = JSON.parse(last);
  } catch {
    json = undefined;
  }
  return { ...r, json, shown: `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr.slice(-3000)}` };
}

describe.each(['embedded', 'api'] as const)('mira ingest and mira search (%s)', (mode) => {
  const target = targets[mode];

  it('a folder: added, duplicates and refused with its code, extracted before the summary; then found by search', async () => {
    const env = await target.env();
    const collection = unique('cli');
    await target.prepare(collection);
    const ingest = await mira(['ingest', folder, '--collection', collection, '--json'], env);
    const summary = ingest.json as IngestSummary;
    expect(ingest.code, `a refusal makes the exit code 1: ${ingest.shown}`).toBe(1);
    expect(summary, ingest.shown).toMatchObject({ collection, added: 3, duplicates: 1, ready: 3, failed: 0, pending: 0 });
    expect(summary.refused, ingest.shown).toEqual([{ source: join(folder, 'notes.jpg'), code: 'image_unsupported', message: expect.any(String) }]);

    const plain = await mira(['search', 'a picture', '--collection', collection, '--k', '10', '--no-rerank', '--json'], env);
    expect(plain.code, plain.shown).toBe(0);
    const out = plain.json as { collection: string; reranked: boolean; model: string; results: SearchRow[] };
    expect(out, plain.shown).toMatchObject({ collection, reranked: false, model: server().ctx.defaultModel.id });
    // a.png and copy-of-a.png are one image, recorded from whichever file was read first.
    const sources = out.results.map((r) => r.source.replace('copy-of-a.png', 'a.png')).sort();
    expect(sources, plain.shown).toEqual(['a.png', 'b.png', 'c.png'].map(target.sourceOf));

    const reranked = await mira(['search', 'a picture', '--collection', collection, '--k', '2', '--json'], env);
    const top = reranked.json as { reranked: boolean; results: SearchRow[] };
    expect(top, reranked.shown).toMatchObject({ reranked: true, rerankRule: 'itm+lm' });
    expect(top.results, reranked.shown).toHaveLength(2);
    for (const r of top.results) expect(r, reranked.shown).toMatchObject({ itmScore: expect.any(Number), lmScore: expect.any(Number) });

    const blip = await mira(['search', 'a picture', '--collection', collection, '--k', '2', '--rerank-rule', 'itm', '--json'], env);
    expect(blip.json, blip.shown).toMatchObject({ reranked: true, rerankRule: 'itm' });
    for (const r of (blip.json as { results: SearchRow[] }).results) expect(r.lmScore, blip.shown).toBeUndefined();
    const bad = await mira(['search', 'a picture', '--collection', collection, '--rerank-rule', 'lm'], env);
    expect(bad.code, bad.shown).toBe(2);
    expect(bad.shown).toContain('--rerank-rule');
  }, 180_000);

  it('a manifest: metadata reaches the image, a loopback URL is refused naming its line', async () => {
    const env = await target.env();
    const collection = unique('cli-manifest');
    await target.prepare(collection);
    const ingest = await mira(['ingest', manifest, '--collection', collection, '--json'], env);
    const summary = ingest.json as IngestSummary;
    expect(summary, ingest.shown).toMatchObject({ added: 1, duplicates: 0, ready: 1 });
    expect(summary.refused, ingest.shown).toEqual([{ source: 'http://127.0.0.1:9/x.png (line 2)', code: 'address_refused', message: expect.any(String) }]);

    const search = await mira(['search', 'green', '--collection', collection, '--filter', '{"album":"green"}', '--json'], env);
    const out = search.json as { results: SearchRow[] };
    expect(out.results, search.shown).toEqual([expect.objectContaining({ source: target.sourceOf('b.png'), metadata: { album: 'green' } })]);
  }, 180_000);

  it('a missing collection is made with the active model; the human output is the same summary line in both modes', async () => {
    const env = await target.env();
    const r = await mira(['ingest', join(folder, 'c.png'), '--collection', unique('cli-text')], env);
    expect(r.code, r.shown).toBe(0);
    expect(r.stdout.trim(), r.shown).toBe('added 1, duplicates 0, refused 0, extracted 1, failed 0');
  }, 120_000);
});

describe('mira against a server it cannot use', () => {
  it('a read-only key cannot ingest: the run stops with the problem, exit 1', async () => {
    const r = await mira(['ingest', folder, '--collection', unique('cli-denied'), '--api', server().url], { MIRA_API_KEY: await keyOf(['read']) });
    expect(r.code, r.shown).toBe(1);
    expect(r.stderr, r.shown).toMatch(/403 forbidden/);
  }, 120_000);

  it('--api that is not an http(s) URL is a usage error (exit 2)', async () => {
    const r = await mira(['search', 'x', '--collection', 'c', '--api', 'ftp://example'], {});
    expect(r.code, r.shown).toBe(2);
    expect(r.stderr, r.shown).toMatch(/--api must be an http\(s\) URL/);
  }, 60_000);
});
