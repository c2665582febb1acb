/**
 * Index benchmark: recall@10 and single-thread QPS for ef 16…256 through Mira's index layer and
 * through bare hnswlib-node, on one graph (built through Mira, saved, loaded through Mira's startup
 * path; bare calls searchKnn on the same native index), timed in small blocks that alternate which
 * side goes first.
 *
 *   npm run bench:index -- --json FILE [--n 100000] [--dim D] [--queries 1000] [--rounds 5] [--min-seconds 3]
 *                          [--intrinsic D] [--plot FILE]
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { savePair, indexPaths, encodeLabels } from '../src/index/files.ts';
import { loadVerified } from '../src/index/load.ts';
import { HnswStore, newHnsw, type HnswParams } from '../src/index/store.ts';
import { sweepSvg, type SweepPoint } from './index-plot.ts';
import { benchArgs, fmt, ROOT, writeJson } from './common.ts';

const args = benchArgs({
  n: { type: 'string', default: '100000' },
  dim: { type: 'string' },
  queries: { type: 'string', default: '1000' },
  rounds: { type: 'string', default: '5' },
  'min-seconds': { type: 'string', default: '3' },
  intrinsic: { type: 'string' },
  plot: { type: 'string', default: 'bench/out/index-ef-sweep.svg' },
});
const N = Number(args.n);
const Q = Number(args.queries);
const ROUNDS = Number(args.rounds);
/** Per ef, passes continue until bare hnswlib has used this much CPU: short timings are noise. */
const MIN_SECONDS = Number(args['min-seconds']);
const K = 10;
/** With --intrinsic D: points near a random D-dimensional subspace, as real embeddings lie near a low-dimensional manifold. */
const INTRINSIC = args.intrinsic ? Number(args.intrinsic) : undefined;
const BLOCK = 25;
const EFS = [16, 32, 64, 128, 256];
const manifest = resolve(ROOT, 'models/default/manifest.json');
const manifestDim = existsSync(manifest) ? (JSON.parse(readFileSync(manifest, 'utf8')) as { embedDim?: number }).embedDim : undefined;
const DIM = Number(args.dim ?? manifestDim ?? 256);
const dimSource = args.dim ? '--dim' : manifestDim ? 'models/default/manifest.json embedDim' : 'no default model yet: 256';
// The collection defaults (src/db/schema/collections.ts).
const params: HnswParams = { dim: DIM, space: 'cosine', M: 16, efConstruction: 200, efSearch: 64 };
console.log(`index benchmark: ${N} random unit vectors${INTRINSIC ? ` near a ${INTRINSIC}-d subspace` : ''}, dim ${DIM} (${dimSource}), ${Q} queries, M ${params.M}, efConstruction ${params.efConstruction}`);

const lift = INTRINSIC ? latentLift(INTRINSIC, DIM, 3) : undefined;
const data = unitVectors(N, DIM, 1, lift);
const queries = unitVectors(Q, DIM, 2, lift);
const queryF32 = Array.from({ length: Q }, (_, i) => queries.subarray(i * DIM, (i + 1) * DIM));
const queryArrays = queryF32.map((q) => Array.from(q));

let t = performance.now();
const truth = exactTopK(data, queries, N, Q, DIM, K);
console.log(`  exact ground truth: ${fmt((performance.now() - t) / 1000)} s`);

t = performance.now();
const built = new HnswStore(params, newHnsw(params, N));
for (let i = 0; i < N; i++) built.add(i + 1, data.subarray(i * DIM, (i + 1) * DIM));
const buildSeconds = (performance.now() - t) / 1000;
console.log(`  built through Mira: ${fmt(buildSeconds)} s (${fmt(N / buildSeconds, 0)} vectors/s)`);

const dir = await mkdtemp(join(tmpdir(), 'mira-bench-index-'));
const collectionId = '00000000-0000-4000-8000-000000000000';
const paths = indexPaths(dir, collectionId, 'bench@1');
const sidecar = await savePair(paths, (f) => built.hnsw.writeIndex(f).then(() => undefined), {
  collectionId, modelId: 'bench@1', lastApplied: N, seen: N, dim: DIM, space: 'cosine', M: params.M, efConstruction: params.efConstruction,
  count: N, deleted: 0, tombstones: encodeLabels([]),
});
// Mira loads the file through its startup path (verify, then hnswlib's readIndex), and bare
// hnswlib-node searches that same native index directly. Separate copies of one graph were tried
// first: where a copy lands in memory moved its speed by up to 5% (two bare copies differed by 4%),
// more than the layer costs. One object leaves the layer as the only difference; each block of
// queries runs on both sides, alternating which goes first, so neither gets the other's warm cache.
const mira = await loadMira();
const bare = mira.hnsw;

const sweep: (SweepPoint & { bareRecall: number; overhead: number; overheadSpread: [number, number] })[] = [];
for (const ef of EFS) {
  // The same ef on both sides: Mira sets it when its search asks for a new one, bare once here.
  let miraRecall = 0;
  let bareRecall = 0;
  for (let i = 0; i < Q; i++) miraRecall += overlap(mira.search(queryF32[i]!, K, { ef }).map((h) => h.label), truth[i]!);
  bare.setEf(ef);
  for (let i = 0; i < Q; i++) bareRecall += overlap(bare.searchKnn(queryArrays[i]!, K).neighbors, truth[i]!);
  // Small blocks, alternating which side goes first, so background load and cache fall on both alike.
  const reps: { mira: number; bare: number }[] = [];
  for (let r = 0; r < ROUNDS || reps.reduce((a, x) => a + x.bare, 0) < MIN_SECONDS; r++) {
    let miraT = 0;
    let bareT = 0;
    for (let q0 = 0, block = 0; q0 < Q; q0 += BLOCK, block++) {
      const q1 = Math.min(Q, q0 + BLOCK);
      const runBare = () => (bareT += timed(() => { for (let i = q0; i < q1; i++) bare.searchKnn(queryArrays[i]!, K); }));
      const runMira = () => (miraT += timed(() => { for (let i = q0; i < q1; i++) mira.search(queryF32[i]!, K, { ef }); }));
      if (block % 2) { runBare(); runMira(); } else { runMira(); runBare(); }
    }
    reps.push({ mira: miraT, bare: bareT });
  }
  const miraT = reps.reduce((a, x) => a + x.mira, 0);
  const bareT = reps.reduce((a, x) => a + x.bare, 0);
  const perRep = reps.map((x) => x.mira / x.bare - 1);
  sweep.push({
    ef,
    recall: miraRecall / (Q * K),
    bareRecall: bareRecall / (Q * K),
    miraQps: (Q * reps.length) / miraT,
    bareQps: (Q * reps.length) / bareT,
    overhead: miraT / bareT - 1,
    overheadSpread: [Math.min(...perRep), Math.max(...perRep)],
  });
}

const fileBytesPerImage = sidecar.bytes / N;
const figures = {
  index: {
    vectors: N,
    dim: DIM,
    dimSource,
    data: INTRINSIC ? `unit vectors near a random ${INTRINSIC}-dimensional subspace (embedding-like)` : 'uniform random unit vectors (intrinsic dimension = dim: the hardest case for recall)',
    queries: `${Q} fresh vectors from the same distribution (not data points)`,
    params: { M: params.M, efConstruction: params.efConstruction, space: params.space },
    timing: 'CPU seconds of this process (process.cpuUsage), so QPS is per CPU second of one thread even on a shared machine',
    layer: 'HnswStore.search (VectorIndex.search delegates to it) with Float32Array queries; bare: searchKnn with ready number[] queries, setEf once per ef',
    graph: 'one graph: built through Mira and saved, loaded through Mira\'s startup path; bare hnswlib-node calls searchKnn on that same native index',
    rounds: `at least ${ROUNDS} passes over the queries and ${MIN_SECONDS} s per side, timed in blocks of ${BLOCK} queries alternating Mira and bare`,
    buildSeconds,
    bytesPerImage: fileBytesPerImage + DIM * 4,
    fileBytesPerImage,
    postgresVectorBytesPerImage: DIM * 4,
    efSweep: sweep,
    maxOverhead: Math.max(...sweep.map((s) => s.overhead)),
    plot: args.plot,
  },
};
await mkdir(resolve(ROOT, 'bench/out'), { recursive: true });
await writeFile(resolve(ROOT, figures.index.plot), sweepSvg(sweep, `HNSW ef sweep: ${N} × ${DIM}-d ${INTRINSIC ? `(intrinsic ${INTRINSIC}-d)` : '(uniform)'}, M ${params.M}, efC ${params.efConstruction}, k ${K}`));
await rm(dir, { recursive: true, force: true });

console.log(`  bytes per image: ${fmt(fileBytesPerImage, 0)} in the index file + ${DIM * 4} in Postgres = ${fmt(figures.index.bytesPerImage, 0)}`);
console.log('    ef   recall@10   Mira QPS   bare QPS   overhead');
for (const s of sweep) {
  console.log(`  ${String(s.ef).padStart(4)}   ${fmt(s.recall, 4).padStart(9)}   ${fmt(s.miraQps, 0).padStart(8)}   ${fmt(s.bareQps, 0).padStart(8)}   ${fmt(s.overhead * 100, 1).padStart(6)}%`);
}
console.log(`  max overhead ${fmt(figures.index.maxOverhead * 100, 1)}% (target < 10%); plot ${figures.index.plot}`);
await writeJson(args.json, figures);

/**
 * CPU seconds (user + system) of this process for `fn`: the machine may be shared, and CPU time
 * does not count the slices another process took. QPS below are per CPU second of one thread.
 */
async function loadMira(): Promise<HnswStore> {
  const loaded = await loadVerified(paths, params, { collectionId, modelId: 'bench@1' });
  if (loaded.openedBy !== 'file') throw new Error(`Mira did not load its own file: ${loaded.reason}`);
  return loaded.store;
}

function timed(fn: () => void): number {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

function overlap(found: number[], want: Int32Array): number {
  let hits = 0;
  for (const l of found) if (want.includes(l)) hits++;
  return hits;
}

function gaussian(seed: number): () => number {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
}

/** A random dim × d matrix (row-major) lifting d-dimensional latents into dim. */
function latentLift(d: number, dim: number, seed: number): { d: number; m: Float32Array } {
  const g = gaussian(seed);
  return { d, m: Float32Array.from({ length: dim * d }, () => g()) };
}

/**
 * n unit vectors in one buffer: isotropic Gaussian, or with `lift` a Gaussian latent lifted into
 * dim plus isotropic noise at a tenth of the signal's energy.
 */
function unitVectors(n: number, dim: number, seed: number, lift?: { d: number; m: Float32Array }): Float32Array {
  const g = gaussian(seed);
  const out = new Float32Array(n * dim);
  const z = new Float64Array(lift?.d ?? 0);
  const noise = lift ? Math.sqrt(lift.d / 10) : 1;
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < z.length; t++) z[t] = g();
    let s = 0;
    for (let j = 0; j < dim; j++) {
      let v = noise * g();
      if (lift) for (let t = 0; t < lift.d; t++) v += lift.m[j * lift.d + t]! * z[t]!;
      out[i * dim + j] = v;
      s += v * v;
    }
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < dim; j++) out[i * dim + j]! *= inv;
  }
  return out;
}

/** Exact top k labels (1-based, as indexed) per query by inner product; 8 queries per pass over the data. */
function exactTopK(data: Float32Array, qs: Float32Array, n: number, q: number, dim: number, k: number): Int32Array[] {
  const out: Int32Array[] = [];
  const B = 8;
  for (let q0 = 0; q0 < q; q0 += B) {
    const nb = Math.min(B, q - q0);
    const best = Array.from({ length: nb }, () => ({ s: new Float64Array(k).fill(-Infinity), l: new Int32Array(k) }));
    const dots = new Float64Array(nb);
    for (let i = 0; i < n; i++) {
      const off = i * dim;
      // The data row stays in L1 across the block's queries.
      for (let b = 0; b < nb; b++) {
        const qoff = (q0 + b) * dim;
        let s0 = 0;
        let s1 = 0;
        let j = 0;
        for (; j + 1 < dim; j += 2) {
          s0 += data[off + j]! * qs[qoff + j]!;
          s1 += data[off + j + 1]! * qs[qoff + j + 1]!;
        }
        if (j < dim) s0 += data[off + j]! * qs[qoff + j]!;
        dots[b] = s0 + s1;
      }
      for (let b = 0; b < nb; b++) {
        const top = best[b]!;
        const d = dots[b]!;
        if (d <= top.s[k - 1]!) continue;
        let p = k - 1;
        while (p > 0 && top.s[p - 1]! < d) {
          top.s[p] = top.s[p - 1]!;
          top.l[p] = top.l[p - 1]!;
          p--;
        }
        top.s[p] = d;
        top.l[p] = i + 1;
      }
    }
    for (const b of best) out.push(b.l);
  }
  return out;
}
