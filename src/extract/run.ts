import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Db } from '../db/client.ts';
import { labelsForImages, vectorsForLabels } from '../db/queries/embeddings.ts';
import { getModel } from '../db/queries/models.ts';
import type { Runtime } from '../inference/runtime.ts';
import { classifyError } from '../ingest/errors.ts';
import type { IngestLimits } from '../ingest/limits.ts';
import { readSource } from '../ingest/sources.ts';
import { PermanentJobError, type JobRun } from '../jobs/types.ts';
import { writeDurably, type BlobStore } from '../storage/blob.ts';
import { exportDir, OUTPUT_FILES } from './files.ts';
import { float32Bytes, npyHeader } from './npy.ts';
import type { ExtractPayload } from './payload.ts';
import { loadOrMakePlan, type PlanItem } from './plan.ts';

export interface ExtractDeps {
  db: Db;
  blobs: BlobStore;
  runtime(modelId: string): Promise<Runtime>;
  dataDir: string;
  limits: IngestLimits;
}

/** One output row (written to items.jsonl with its `row`), or an item that could not be embedded. */
interface Row {
  imageId: string | null;
  sha256: string | null;
  file?: string;
  url?: string;
  caption: string | null;
  captionTokens?: number[];
  metadata: Record<string, unknown>;
  line?: number;
  error?: { code: string; message: string };
}

export interface ExtractResult {
  model: string;
  dim: number;
  total: number;
  rows: number;
  failed: number;
  chunks: number;
  /** Chunks a previous try had finished: this try did not compute them again. */
  chunksReused: number;
  /** Items embedded by this try. */
  computed: number;
  files: string[];
}

/** Files of each images read, embedded and captioned at once: enough to fill the runtime's batches. */
const IN_FLIGHT = 16;

/**
 * Extracts features in chunks under <dataDir>/exports/<jobId>/: each finished chunk is a durable
 * pair of files (chunks/N.f32, then chunks/N.jsonl as its marker), so a try after a crash skips
 * them. When every chunk is there, they are joined into embeddings.npy, items.jsonl,
 * failed.jsonl (items that could not be read or decoded) and manifest.json, written last.
 *
 * A collection's rows are its stored vectors (what search uses; the same runtime computed them
 * from the same bytes, so they equal POST /v1/embeddings for those images). Files and URLs are read
 * under the ingestion rules (root, SSRF checks, size caps) and embedded by the runtime.
 */
export async function extract(deps: ExtractDeps, p: ExtractPayload, run: JobRun): Promise<ExtractResult> {
  const dir = exportDir(deps.dataDir, run.id);
  const finished = await readManifest(dir);
  if (finished) return finished.result;
  const model = await getModel(deps.db, p.modelId);
  if (!model) throw new PermanentJobError(`no model ${p.modelId} is registered`, 'unknown_model');
  await mkdir(join(dir, 'chunks'), { recursive: true });
  const plan = await loadOrMakePlan(deps, p.source, dir);
  const runtime = await deps.runtime(model.id);
  if (p.captions && !runtime.manifest.caption) throw new PermanentJobError(`model ${model.id} has no captioner: ask without captions`, 'model_unsuitable');

  const total = plan.length;
  const chunks = Math.ceil(total / p.chunkSize);
  const done = new Set((await readdir(join(dir, 'chunks'))).filter((f) => f.endsWith('.jsonl')).map((f) => Number.parseInt(f, 10)));
  let chunksReused = 0;
  let computed = 0;
  const report = (i: number) => run.progress({ done: Math.min(total, (i + 1) * p.chunkSize), total, computed, chunks, chunksReused });
  await run.progress({ done: 0, total, computed, chunks, chunksReused });
  for (let i = 0; i < chunks; i++) {
    if (done.has(i)) {
      chunksReused++;
      continue;
    }
    if (run.signal.aborted) throw new Error(`stopped before chunk ${i + 1} of ${chunks}; the job resumes there`);
    const items = plan.slice(i * p.chunkSize, (i + 1) * p.chunkSize);
    const rows = await extractChunk(deps, runtime, p, items, model.embedDim);
    // The vectors first, then the rows: a chunk counts as done once its .jsonl exists.
    await writeDurably(join(dir, 'chunks', `${chunkName(i)}.f32`), float32Bytes(rows.flatMap((r) => (r.vector ? [r.vector] : []))));
    await writeDurably(join(dir, 'chunks', `${chunkName(i)}.jsonl`), Buffer.from(rows.map((r) => `${JSON.stringify(r.row)}\n`).join('')));
    computed += items.length;
    await report(i);
  }
  const result = await finalize(dir, { model: model.id, dim: model.embedDim, total, chunks, chunksReused, computed });
  run.log.info({ ...result, files: undefined }, 'extraction finished');
  return result;
}

const chunkName = (i: number) => String(i).padStart(6, '0');

async function extractChunk(deps: ExtractDeps, runtime: Runtime, p: ExtractPayload, items: PlanItem[], dim: number) {
  const stored = await storedVectors(deps.db, p.modelId, items);
  const out: { row: Row; vector?: Float32Array }[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await extractItem(deps, runtime, p, items[i]!, stored);
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, items.length) }, worker));
  for (const r of out) {
    if (r.vector && r.vector.length !== dim) throw new PermanentJobError(`a ${p.modelId} vector has ${r.vector.length} values, not ${dim}`, 'bundle_invalid');
  }
  return out;
}

async function storedVectors(db: Db, modelId: string, items: PlanItem[]): Promise<Map<string, Float32Array>> {
  const ids = items.flatMap((it) => ('imageId' in it ? [it.imageId] : []));
  const labels = await labelsForImages(db, { modelId, imageIds: ids });
  const vectors = await vectorsForLabels(db, [...labels.values()]);
  return new Map([...labels].flatMap(([id, label]) => (vectors.has(label) ? [[id, vectors.get(label)!] as const] : [])));
}

async function extractItem(deps: ExtractDeps, runtime: Runtime, p: ExtractPayload, item: PlanItem, stored: Map<string, Float32Array>): Promise<{ row: Row; vector?: Float32Array }> {
  if ('imageId' in item) {
    const row: Row = { imageId: item.imageId, sha256: item.sha256, file: item.source, caption: item.caption, metadata: item.metadata };
    const vector = stored.get(item.imageId);
    if (vector) return { row, vector };
    // Deleted, or not embedded by this model since: recomputed from the original while it is kept.
    const bytes = await deps.blobs.get(item.sha256, 'original');
    if (!bytes) return { row: { ...row, error: { code: 'image_deleted', message: `image ${item.imageId} was deleted before it was extracted` } } };
    return embedBytes(runtime, p, row, bytes);
  }
  const where = 'url' in item ? { url: item.url } : { file: item.path };
  const row: Row = { imageId: null, sha256: null, ...where, caption: null, metadata: item.metadata ?? {}, ...(item.line ? { line: item.line } : {}) };
  try {
    const src = await readSource('url' in item ? { kind: 'url', url: item.url } : { kind: 'path', path: item.path }, deps.limits);
    return await embedBytes(runtime, p, { ...row, ...('file' in where ? { file: src.source } : {}), sha256: createHash('sha256').update(src.bytes).digest('hex') }, src.bytes);
  } catch (err) {
    const c = classifyError(err);
    // A transient failure (a remote 503, a crashed inference worker) fails the try: the job resumes at this chunk.
    if (c.retryable) throw err;
    return { row: { ...row, error: { code: c.code, message: c.message } } };
  }
}

async function embedBytes(runtime: Runtime, p: ExtractPayload, row: Row, bytes: Uint8Array): Promise<{ row: Row; vector: Float32Array }> {
  const [emb] = await runtime.embedImages([bytes]);
  if (!p.captions || ('imageId' in row && row.imageId)) return { row, vector: emb!.feat };
  const caption = await runtime.caption(bytes);
  return { row: { ...row, caption: caption.text, captionTokens: caption.ids }, vector: emb!.feat };
}

interface Manifest {
  format: 'mira-extract/1';
  result: ExtractResult;
  rowOrder: string;
  dtype: 'float32';
  files: Record<string, string>;
}

async function readManifest(dir: string): Promise<Manifest | undefined> {
  const text = await readFile(join(dir, 'manifest.json'), 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  return text === undefined ? undefined : (JSON.parse(text) as Manifest);
}

/** Joins the chunks into the output files; manifest.json last, then the chunks go. Safe to repeat after a crash. */
async function finalize(dir: string, r: Omit<ExtractResult, 'rows' | 'failed' | 'files'>): Promise<ExtractResult> {
  const chunkFiles = (await readdir(join(dir, 'chunks'))).filter((f) => f.endsWith('.jsonl')).sort();
  if (chunkFiles.length !== r.chunks) throw new Error(`expected ${r.chunks} chunks, found ${chunkFiles.length}`);
  const items: string[] = [];
  const failed: string[] = [];
  for (const f of chunkFiles) {
    for (const line of (await readFile(join(dir, 'chunks', f), 'utf8')).split('\n')) {
      if (!line) continue;
      const row = JSON.parse(line) as Row;
      if (row.error) failed.push(`${line}\n`);
      else items.push(`${JSON.stringify({ row: items.length, ...row })}\n`);
    }
  }
  async function* vectors() {
    yield npyHeader(items.length, r.dim);
    for (const f of chunkFiles) yield await readFile(join(dir, 'chunks', f.replace(/\.jsonl$/, '.f32')));
  }
  await writeDurably(join(dir, 'embeddings.npy'), vectors());
  await writeDurably(join(dir, 'items.jsonl'), Buffer.from(items.join('')));
  if (failed.length) await writeDurably(join(dir, 'failed.jsonl'), Buffer.from(failed.join('')));
  const result: ExtractResult = { ...r, rows: items.length, failed: failed.length, files: ['embeddings.npy', 'items.jsonl', ...(failed.length ? ['failed.jsonl'] : []), 'manifest.json'] };
  const manifest: Manifest = {
    format: 'mira-extract/1',
    result,
    dtype: 'float32',
    rowOrder:
      'Row i of embeddings.npy is the line of items.jsonl with "row": i. Rows follow the source: a collection\'s ready images by creation time (then id), ' +
      'a manifest\'s lines, or a folder\'s files sorted by path; items that could not be read are left out and listed in failed.jsonl.',
    files: Object.fromEntries(result.files.map((f) => [f, OUTPUT_FILES[f as keyof typeof OUTPUT_FILES]])),
  };
  await writeDurably(join(dir, 'manifest.json'), Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
  await rm(join(dir, 'chunks'), { recursive: true, force: true });
  await rm(join(dir, 'plan.json'), { force: true });
  return result;
}
