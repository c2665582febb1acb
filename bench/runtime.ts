/**
 * Runtime benchmark: Mira's inference layer against bare onnxruntime-node, side by side in one run.
 *   npm run bench:runtime -- [--bundle DIR] [--seconds 5] [--batch 32] [--json FILE]
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Runtime } from '../src/inference/runtime.ts';
import { renderScene, sampleScenes } from '../src/scenes/index.ts';
import { benchArgs, defaultBundle, fmt, lagMonitor, rate, writeJson } from './common.ts';

const args = benchArgs({ batch: { type: 'string', default: '32' } });
const bundle = args.bundle ?? defaultBundle();
const seconds = Number(args.seconds);
const batch = Number(args.batch);
const cores = availableParallelism();

const rt = await Runtime.open(bundle, { maxBatch: batch });
const m = rt.manifest;
const s = m.preprocess.size;
const workers = rt.poolSize.threads;
const threads = workers * rt.poolSize.intraOpThreads;

// Encoded inputs, as a user would send them: generated scenes as PNG at the model's input size.
const records = sampleScenes(11, 256);
const images = await Promise.all(records.map((r) => renderScene(r.scene, { size: s, layout: r.layout })));
const texts = records.map((r) => r.captions[0]!);

// Bare engine: one session on this thread with the same total threads, fed ready tensors.
const bare = await ort.InferenceSession.create(join(bundle, m.graphs.vision.file), {
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
});
const pixels = new ort.Tensor('float32', new Float32Array(batch * 3 * s * s).map(() => Math.random() - 0.5), [batch, 3, s, s]);
const bareOutputs = Object.values(m.graphs.vision.outputs).filter((x): x is string => !!x);
await bare.run({ [m.graphs.vision.inputs.pixelValues]: pixels }, bareOutputs);
const bareImagesPerSec = await rate(seconds, async () => {
  await bare.run({ [m.graphs.vision.inputs.pixelValues]: pixels }, bareOutputs);
  return batch;
});
await bare.release();

const lag = lagMonitor();
await rt.embedImages(images.slice(0, batch)); // warm-up
let cursor = 0;
const miraImagesPerSec = await rate(seconds, async () => {
  // Keep two batches in flight so both worker threads stay busy, as concurrent ingestion does.
  const chunk = Array.from({ length: 2 * batch }, () => images[cursor++ % images.length]!);
  await rt.embedImages(chunk);
  return chunk.length;
});

let t = 0;
const serialPerSec = await rate(seconds, async () => {
  await rt.embedTexts([texts[t++ % texts.length]!]);
  return 1;
});
const concurrent32PerSec = await rate(seconds, async () => {
  await Promise.all(Array.from({ length: 32 }, () => rt.embedTexts([texts[t++ % texts.length]!])));
  return 32;
});
const { maxMs, p99Ms } = lag.stop();
await rt.close();

const figures = {
  bundle: `${m.name}@${m.version}`,
  machine: { cores, workerThreads: workers, totalInferenceThreads: threads, batch },
  image: { bareImagesPerSec, miraImagesPerSec, ratio: miraImagesPerSec / bareImagesPerSec },
  text: { serialPerSec, concurrent32PerSec, batchingGain: concurrent32PerSec / serialPerSec },
  eventLoop: { maxLagMs: maxMs, p99LagMs: p99Ms },
};
console.log(`runtime benchmark: ${figures.bundle}, ${cores} cores, ${workers} workers, batch ${batch}, ${seconds}s per figure`);
console.log(`  images  bare ${fmt(bareImagesPerSec)}/s  mira ${fmt(miraImagesPerSec)}/s (from PNG bytes)  ratio ${fmt(figures.image.ratio, 2)}  (target >= 0.85)`);
console.log(`  texts   serial ${fmt(serialPerSec)}/s  32 concurrent ${fmt(concurrent32PerSec)}/s  gain ${fmt(figures.text.batchingGain, 2)}  (target >= 2)`);
console.log(`  event loop  max lag ${fmt(maxMs)} ms  p99 ${fmt(p99Ms)} ms  (target max < 20)`);
await writeJson(args.json, figures);
