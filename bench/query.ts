/**
 * Query benchmark: text search over HTTP against `mira serve` (a child process on loopback, embedded
 * mode, an API key), beside its floor, text embedding + HNSW search timed in-process on the same
 * model and index, in one run.
 *   npm run bench:query -- [--n 10000] [--requests 400] [--bundle DIR] [--data-dir DIR] [--json FILE]
 * The collection is built in this process through the ingest pipeline the API's upload runs
 * (ingestImage, then the in-process extraction jobs), captions off. --data-dir keeps it for the next run.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { createKey } from '../src/api/keys.ts';
import { ensureCollection } from '../src/cli/collection.ts';
import { loadEnv } from '../src/config.ts';
import { createContext, type AppContext } from '../src/context.ts';
import type { Collection } from '../src/db/queries/collections.ts';
import { countImagesByStatus } from '../src/db/queries/images.ts';
import { ingestImage } from '../src/ingest/pipeline.ts';
import { InProcessJobQueue } from '../src/jobs/in-process.ts';
import { createLogger } from '../src/log.ts';
import { renderScene, sampleScenes } from '../src/scenes/index.ts';
import { search } from '../src/search/search.ts';
import { benchArgs, defaultBundle, fmt, ROOT, writeJson } from './common.ts';
import { startServeChild } from './serve-child.ts';

const args = benchArgs({ n: { type: 'string', default: '10000' }, requests: { type: 'string', default: '400' }, 'data-dir': { type: 'string' } });
const n = Number(args.n);
const requests = Number(args.requests);
const bundle = resolve(args.bundle ?? defaultBundle());
const K = 10;
const CANDIDATES = 16;
const CONCURRENCY = [1, 8, 32] as const;

const defaultDir = resolve(ROOT, 'models/default');
const why = bundle === defaultDir ? 'the default model' : existsSync(join(defaultDir, 'manifest.json')) ? 'as asked' : 'models/default has no manifest.json yet';
console.log(`query benchmark: bundle ${relative(ROOT, bundle) || bundle} (${why})`);

const dataDir = args['data-dir'] ? resolve(args['data-dir']) : await mkdtemp(join(tmpdir(), 'mira-bench-query-'));
await mkdir(dataDir, { recursive: true });
const env = { MIRA_DATA_DIR: dataDir, MIRA_MODEL_DIR: bundle, MIRA_CAPTION_ON_INGEST: 'false', DATABASE_URL: '', REDIS_URL: '' };
const texts = [...new Set(sampleScenes(777, 2000).flatMap((r) => r.captions))].slice(0, 1000);
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

/** Adds generated scenes through the ingest pipeline until the collection holds `n` ready images. */
async function build(ctx: AppContext, collection: Collection): Promise<number> {
  const size = Math.max(48, (await ctx.runtime(collection.embedder)).manifest.preprocess.size);
  const t0 = performance.now();
  for (let seed = 9001; ((await countImagesByStatus(ctx.db, collection.id)).ready ?? 0) < n; seed++) {
    if (seed > 9010) throw new Error(`the collection does not reach ${n} ready images: ${JSON.stringify(await countImagesByStatus(ctx.db, collection.id))}`);
    const want = n - ((await countImagesByStatus(ctx.db, collection.id)).ready ?? 0);
    const records = sampleScenes(seed, want);
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < records.length) {
          const i = next++;
          const r = records[i]!;
          const bytes = await renderScene(r.scene, { size, layout: r.layout });
          await ingestImage(ctx, collection, { kind: 'upload', bytes, filename: `${seed}-${i}.png` });
          if (i % 1000 === 999) process.stdout.write(`  built ${i + 1}/${records.length} (seed ${seed})\n`);
        }
      }),
    );
    await (ctx.queue as InProcessJobQueue<unknown>).idle();
  }
  return (performance.now() - t0) / 1000;
}

/** Latencies of `requests` sequential calls of `fn` over the query texts, after 50 to warm up. */
async function timed(fn: (text: string) => Promise<void>): Promise<number[]> {
  for (let i = 0; i < 50; i++) await fn(texts[i % texts.length]!);
  const out: number[] = [];
  for (let i = 0; i < requests; i++) {
    const t0 = performance.now();
    await fn(texts[i % texts.length]!);
    out.push(performance.now() - t0);
  }
  return out;
}

/**
 * In this process, on the model and index the server will load: the floor (text embedding + HNSW
 * search) and the whole search pipeline without HTTP (adds the Postgres joins of ids and rows).
 */
async function inProcess(ctx: AppContext, collection: Collection): Promise<{ floor: number[]; pipeline: number[] }> {
  const rt = await ctx.runtime(collection.embedder);
  const index = await ctx.indexes.get(collection.id, collection.embedder);
  const floor = await timed(async (text) => {
    const [vector] = await rt.embedTexts([text]);
    if (index.search(vector!, K).length !== K) throw new Error('the floor search found fewer than k images');
  });
  const pipeline = await timed(async (text) => {
    const { hits } = await search(ctx, { collection, query: { text }, k: K, rerank: { enabled: false } });
    if (hits.length !== K) throw new Error('the in-process search found fewer than k images');
  });
  return { floor, pipeline };
}

const log = createLogger('bench', 'warn');
const ctx = await createContext({ role: 'cli', env: loadEnv({ ...process.env, ...env }), log });
const collection = await ensureCollection(ctx, 'bench-query');
const buildSeconds = await build(ctx, collection);
const images = (await countImagesByStatus(ctx.db, collection.id)).ready ?? 0;
const index = await ctx.indexes.get(collection.id, collection.embedder);
console.log(`  collection: ${images} ready images, index ${index.stats().count} labels${buildSeconds > 1 ? `, built in ${fmt(buildSeconds)} s` : ' (reused)'}`);
const { floor: floorSamples, pipeline: pipelineSamples } = await inProcess(ctx, collection);
const { key } = await createKey(ctx.db, { name: `bench-query-${Date.now()}`, scopes: ['read'], collections: [collection.id] });
await ctx.close();

const server = await startServeChild({ ...env, MIRA_RATE_LIMIT_PER_MIN: '1000000000', MIRA_LOG_LEVEL: 'warn' }, dataDir);
let errors = 0;
const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };

/** How a cell's searches rank: ITC only, or re-ranked by one of the rules of src/search/score.ts. */
const MODES = ['unranked', 'itm+lm', 'itm'] as const;
type Mode = (typeof MODES)[number];

/** `count` searches with `concurrency` in flight; the latency of each, in ms. */
async function load(concurrency: number, count: number, mode: Mode): Promise<{ lat: number[]; tookMs: number[] }> {
  const reranked = mode !== 'unranked';
  const rerank = reranked ? { enabled: true, candidates: CANDIDATES, rule: mode } : { enabled: false };
  const lat: number[] = [];
  const tookMs: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const text = texts[next++ % texts.length]!;
        const t0 = performance.now();
        try {
          const res = await fetch(`${server.url}/v1/search`, { method: 'POST', headers, body: JSON.stringify({ collectionId: collection.id, text, k: K, rerank }) });
          const body = (await res.json()) as { results?: unknown[]; reranked?: boolean; tookMs?: number };
          if (!res.ok || body.results?.length !== K || body.reranked !== reranked) errors++;
          if (body.tookMs !== undefined) tookMs.push(body.tookMs);
        } catch {
          errors++;
        }
        lat.push(performance.now() - t0);
      }
    }),
  );
  return { lat, tookMs };
}

/** The server's RSS once idle: the median of 5 readings 200 ms apart. */
async function settledRss(): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 200));
    xs.push(await server.rss());
  }
  return quantile(xs, 0.5);
}

try {
  // Warm-up: every cell once, so the heap has grown to what the run needs before the baseline.
  for (const mode of MODES) for (const c of [...CONCURRENCY].reverse()) await load(c, Math.max(200, requests / 2), mode);
  errors = 0;
  const rssWarm = await settledRss();
  const rssTrace: number[] = [];
  const cells = Object.fromEntries(MODES.map((m) => [m, {}])) as Record<Mode, Record<string, { p50Ms: number; p99Ms: number; serverP50Ms: number }>>;
  for (const mode of MODES) {
    for (const c of CONCURRENCY) {
      const { lat, tookMs } = await load(c, requests, mode);
      cells[mode][`c${c}`] = { p50Ms: quantile(lat, 0.5), p99Ms: quantile(lat, 0.99), serverP50Ms: quantile(tookMs, 0.5) };
      rssTrace.push(Math.round((await server.rss()) / 2 ** 20));
    }
  }
  const rssEnd = await settledRss();
  const floorMs = quantile(floorSamples, 0.5);
  const u = cells.unranked;
  const r = cells['itm+lm'];
  const ri = cells.itm;
  const pick = (cs: typeof u, f: 'p50Ms' | 'p99Ms' | 'serverP50Ms') => Object.fromEntries(CONCURRENCY.map((c) => [`c${c}`, cs[`c${c}`]![f]]));
  const query = {
    floorMs,
    floorP99Ms: quantile(floorSamples, 0.99),
    /** search() in-process, without HTTP: the floor plus the Postgres joins (ids by label, rows). */
    pipelineInProcessMs: quantile(pipelineSamples, 0.5),
    p50Ms: pick(u, 'p50Ms'),
    p99Ms: pick(u, 'p99Ms'),
    /** The search pipeline inside the server (the response's tookMs: collection check, embedding, HNSW, Postgres joins). */
    pipelineP50Ms: pick(u, 'serverP50Ms'),
    /** Re-ranked by the default rule, ITM + ITC + LM. */
    reranked: { candidates: CANDIDATES, rule: 'itm+lm', p50Ms: pick(r, 'p50Ms'), p99Ms: pick(r, 'p99Ms'), pipelineP50Ms: pick(r, 'serverP50Ms') },
    /** Re-ranked by BLIP's rule, ITM + ITC (no decoder pass). */
    rerankedItm: { candidates: CANDIDATES, rule: 'itm', p50Ms: pick(ri, 'p50Ms'), p99Ms: pick(ri, 'p99Ms'), pipelineP50Ms: pick(ri, 'serverP50Ms') },
    overheadRatio: u.c1!.p50Ms / floorMs,
    errors,
    rssGrowthPct: (100 * (rssEnd - rssWarm)) / rssWarm,
    /** After warm-up and after the run (settled); `cells`: right after each cell, unranked c1..c32, then itm+lm, then itm. */
    rssMiB: { afterWarmUp: rssWarm / 2 ** 20, afterRun: rssEnd / 2 ** 20, cells: rssTrace },
    tailWithin4xP50: u.c32!.p99Ms <= 4 * u.c1!.p50Ms,
  };
  const figures = {
    bundle: relative(ROOT, bundle) || bundle,
    model: collection.embedder,
    machine: { cores: availableParallelism() },
    setup: { images, k: K, requestsPerCell: requests, mode: 'embedded (PGlite), API key', builtBy: 'in-process ingest pipeline (ingestImage + extraction jobs), captions off' },
    query,
  };

  console.log(`  ${requests} requests per cell, k ${K}, ${figures.machine.cores} cores; floor = text embedding + HNSW search in-process`);
  console.log(`  floor            p50 ${fmt(floorMs, 2)} ms   p99 ${fmt(query.floorP99Ms, 2)} ms`);
  console.log(`  search() in-process, no HTTP (floor + Postgres joins)   p50 ${fmt(query.pipelineInProcessMs, 2)} ms`);
  console.log(`  over HTTP                 ${CONCURRENCY.map((c) => `c=${c}`.padStart(16)).join('')}`);
  const label = { p50Ms: 'p50', p99Ms: 'p99', serverP50Ms: 'p50 in server' };
  for (const [name, cs] of [['unranked', u], [`itm+lm ${CANDIDATES}`, r], [`itm ${CANDIDATES}`, ri]] as const) {
    for (const f of ['p50Ms', 'p99Ms', 'serverP50Ms'] as const) {
      const row = CONCURRENCY.map((c) => `${fmt(cs[`c${c}`]![f], 2)} ms`.padStart(16)).join('');
      console.log(`  ${(f === 'p50Ms' ? name : '').padEnd(12)} ${label[f].padEnd(13)}${row}`);
    }
  }
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  console.log(`  overheadRatio ${fmt(query.overheadRatio, 2)} (target <= 1.3: ${mark(query.overheadRatio <= 1.3)})   errors ${errors} (target 0: ${mark(errors === 0)})`);
  console.log(`  rssGrowthPct ${fmt(query.rssGrowthPct, 2)} (${fmt(query.rssMiB.afterWarmUp)} -> ${fmt(query.rssMiB.afterRun)} MiB; target <= 5: ${mark(query.rssGrowthPct <= 5)}; after each cell ${rssTrace.join(', ')} MiB)`);
  console.log(`  p99 at c=32 ${fmt(u.c32!.p99Ms, 2)} ms vs 4 x p50 at c=1 ${fmt(4 * u.c1!.p50Ms, 2)} ms: ${mark(query.tailWithin4xP50)}`);
  await writeJson(args.json, figures);
} finally {
  await server.stop();
  if (!args['data-dir']) await rm(dataDir, { recursive: true, force: true });
}
