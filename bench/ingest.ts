/**
 * Ingest benchmark: end to end into Postgres, token features and the index (captions off), against
 * the bare vision graph on ready tensors with the same batch and threads, side by side in one run.
 *   npm run bench:ingest -- [--n 1000] [--bundle DIR] [--json FILE]
 * Uses DATABASE_URL when set (else embedded PGlite); jobs run in-process (no Redis round trips).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadEnv } from '../src/config.ts';
import { createContext, type AppContext } from '../src/context.ts';
import { ensureCollection } from '../src/cli/collection.ts';
import { countImagesByStatus } from '../src/db/queries/images.ts';
import { ingestImage } from '../src/ingest/pipeline.ts';
import { InProcessJobQueue } from '../src/jobs/in-process.ts';
import { createLogger } from '../src/log.ts';
import { renderScene, sampleScenes } from '../src/scenes/index.ts';
import { benchArgs, defaultBundle, fmt, writeJson } from './common.ts';

const args = benchArgs({ n: { type: 'string', default: '1000' } });
const n = Number(args.n);
const bundle = args.bundle ?? defaultBundle();

async function withContext<T>(captions: boolean, fn: (ctx: AppContext) => Promise<T>): Promise<T> {
  const dataDir = await mkdtemp(join(tmpdir(), 'mira-bench-ingest-'));
  const env = loadEnv({
    ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {}),
    MIRA_DATA_DIR: dataDir,
    MIRA_MODEL_DIR: bundle,
    MIRA_CAPTION_ON_INGEST: String(captions),
  } as NodeJS.ProcessEnv);
  const ctx = await createContext({ role: 'cli', env, log: createLogger('bench', 'warn') });
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Images per second from the first byte accepted to the last one extracted and indexed. */
async function endToEnd(ctx: AppContext, images: Buffer[]): Promise<number> {
  const collection = await ensureCollection(ctx, `bench-${randomUUID().slice(0, 8)}`);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < images.length) {
        const i = next++;
        await ingestImage(ctx, collection, { kind: 'upload', bytes: images[i]!, filename: `${i}.png` });
      }
    }),
  );
  await (ctx.queue as InProcessJobQueue<unknown>).idle();
  const secs = (performance.now() - t0) / 1000;
  const counts = await countImagesByStatus(ctx.db, collection.id);
  const index = await ctx.indexes.get(collection.id, collection.embedder);
  if (counts.ready !== images.length || index.stats().count !== images.length) {
    throw new Error(`benchmark run incomplete: ${JSON.stringify(counts)}, index ${index.stats().count}`);
  }
  return images.length / secs;
}

const manifestSize = (await import(join(bundle, 'manifest.json'), { with: { type: 'json' } })).default.preprocess.size as number;
const records = sampleScenes(4242, n);
const images = await Promise.all(records.map((r) => renderScene(r.scene, { size: Math.max(64, manifestSize), layout: r.layout })));

const { imagesPerSec, bare, threads, batch, model } = await withContext(false, async (ctx) => {
  const rt = await ctx.runtime(ctx.defaultModel.id);
  const m = rt.manifest;
  const s = m.preprocess.size;
  const threads = rt.poolSize.threads * rt.poolSize.intraOpThreads;
  const batch = ctx.env.MIRA_MAX_BATCH;
  await rt.embedImages(images.slice(0, 8)); // warm-up
  const imagesPerSec = await endToEnd(ctx, images);
  // Bare: the vision graph on ready tensors, same batch and total threads.
  const session = await ort.InferenceSession.create(join(bundle, m.graphs.vision.file), { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const feeds = { [m.graphs.vision.inputs.pixelValues]: new ort.Tensor('float32', new Float32Array(batch * 3 * s * s).fill(0.1), [batch, 3, s, s]) };
  await session.run(feeds);
  const t0 = performance.now();
  let done = 0;
  while (performance.now() - t0 < 3000) {
    await session.run(feeds);
    done += batch;
  }
  const bare = done / ((performance.now() - t0) / 1000);
  await session.release();
  return { imagesPerSec, bare, threads, batch, model: rt.id };
});
const withCaptions = await withContext(true, (ctx) => endToEnd(ctx, images.slice(0, Math.min(n, 300))));

const figures = {
  model,
  n,
  database: process.env.DATABASE_URL ? 'postgres' : 'pglite',
  threads,
  batch,
  ingest: { imagesPerSec, bareImagesPerSec: bare, ratio: imagesPerSec / bare, withCaptionsImagesPerSec: withCaptions },
};
console.log(`ingest benchmark: ${model}, ${n} images, ${figures.database}, ${threads} inference threads, batch ${batch}`);
console.log(`  end to end ${fmt(imagesPerSec)}/s   bare vision graph ${fmt(bare)}/s   ratio ${fmt(figures.ingest.ratio, 2)} (target >= 0.75)`);
console.log(`  with captions ${fmt(withCaptions)}/s`);
await writeJson(args.json, figures);
