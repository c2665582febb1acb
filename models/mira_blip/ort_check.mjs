// Runs ONNX graphs with onnxruntime-node (the runtime Mira uses) and dumps the outputs, so Python
// (which cannot run onnxruntime here) can compare them with PyTorch. Tensors travel as raw
// little-endian bytes next to the JSON, because real BLIP logits are far too big for JSON.
//
// usage: node models/mira_blip/ort_check.mjs JOBS.json OUT.json   (reads JOBS.json.bin, writes OUT.json.bin)
// JOBS.json: {"jobs": [{"graph": "/path/x.onnx", "feeds": {NAME: FEED}, "greedy": GREEDY?}]}
//   FEED:   {"type": "float32" | "int64", "dims": [...], "offset": byteOffset} into JOBS.json.bin,
//           or {"from": [jobIndex, outputName]}: an output of an earlier job (chains vision -> decoder).
//   GREEDY: {"steps": n, "ids": "input_ids", "mask": "attention_mask", "logits": "logits"}: argmax
//           decoding that re-runs the graph on the whole prefix each step; feeds[ids] is the prefix.
// OUT.json: {"results": [{"outputs": {NAME: {"type", "dims", "offset"}}, "ids"?: [[...]]}]}
import { readFileSync, writeFileSync } from 'node:fs';
import ort from 'onnxruntime-node';

const [jobsFile, outFile] = process.argv.slice(2);
const { jobs } = JSON.parse(readFileSync(jobsFile, 'utf8'));
const inBin = readFileSync(`${jobsFile}.bin`);
const sessions = new Map();
const session = async (file) => {
  if (!sessions.has(file)) sessions.set(file, await ort.InferenceSession.create(file, { graphOptimizationLevel: 'all' }));
  return sessions.get(file);
};

const count = (dims) => dims.reduce((a, b) => a * b, 1);
const toTensor = (f) => {
  const Ctor = f.type === 'int64' ? BigInt64Array : Float32Array;
  const bytes = inBin.subarray(f.offset, f.offset + count(f.dims) * Ctor.BYTES_PER_ELEMENT);
  const copy = new Uint8Array(bytes); // aligned copy
  return new ort.Tensor(f.type, new Ctor(copy.buffer), f.dims);
};

const chunks = [];
let outOffset = 0;
const dump = (t) => {
  const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  chunks.push(bytes);
  const entry = { type: t.type, dims: [...t.dims], offset: outOffset };
  outOffset += bytes.length;
  return entry;
};

const results = [];
const tensors = []; // per job: raw output tensors, for {"from": ...} feeds
for (const job of jobs) {
  const s = await session(job.graph);
  const feeds = {};
  for (const [name, f] of Object.entries(job.feeds)) feeds[name] = f.from ? tensors[f.from[0]][f.from[1]] : toTensor(f);
  if (!job.greedy) {
    const out = await s.run(feeds);
    tensors.push(out);
    results.push({ outputs: Object.fromEntries(Object.entries(out).map(([k, t]) => [k, dump(t)])) });
    continue;
  }
  const g = job.greedy;
  const [b, t0] = feeds[g.ids].dims;
  const rows = Array.from({ length: b }, (_, r) => Array.from(feeds[g.ids].data.slice(r * t0, (r + 1) * t0), Number));
  for (let step = 0; step < g.steps; step++) {
    const t = rows[0].length;
    feeds[g.ids] = new ort.Tensor('int64', BigInt64Array.from(rows.flat(), (x) => BigInt(x)), [b, t]);
    feeds[g.mask] = new ort.Tensor('int64', new BigInt64Array(b * t).fill(1n), [b, t]);
    const logits = (await s.run(feeds))[g.logits];
    const v = logits.dims[logits.dims.length - 1];
    const perRow = logits.dims.length === 3 ? t * v : v; // [B, T, V] or [B, V]
    const last = logits.dims.length === 3 ? (t - 1) * v : 0;
    for (let r = 0; r < b; r++) {
      const base = r * perRow + last;
      let best = 0;
      for (let i = 1; i < v; i++) if (logits.data[base + i] > logits.data[base + best]) best = i; // first max, like torch
      rows[r].push(best);
    }
  }
  tensors.push({});
  results.push({ outputs: {}, ids: rows });
}
writeFileSync(`${outFile}.bin`, Buffer.concat(chunks));
writeFileSync(outFile, JSON.stringify({ results }));
