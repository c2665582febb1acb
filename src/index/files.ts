import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';

export const FORMAT_VERSION = 1;

export const sidecarSchema = z.object({
  format: z.literal(FORMAT_VERSION),
  collectionId: z.string(),
  modelId: z.string(),
  /** Every change numbered at or below this is in the file. */
  lastApplied: z.number().int().min(0),
  /** Every change up to this was read; some between lastApplied and it may have committed later. */
  seen: z.number().int().min(0),
  dim: z.number().int().positive(),
  space: z.enum(['cosine', 'ip']),
  M: z.number().int().positive(),
  efConstruction: z.number().int().positive(),
  count: z.number().int().min(0),
  deleted: z.number().int().min(0),
  /** Tombstoned labels, little-endian uint32, base64: hnswlib cannot list them. */
  tombstones: z.string(),
  bytes: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  savedAt: z.string(),
});
export type Sidecar = z.infer<typeof sidecarSchema>;

export interface IndexPaths {
  hnsw: string;
  sidecar: string;
  hnswTmp: string;
  sidecarTmp: string;
}

/** `<dataDir>/index/<collectionId>/<modelId>.hnsw` and `.json` beside it. */
export function indexPaths(dataDir: string, collectionId: string, modelId: string): IndexPaths {
  if (!/^[0-9a-f-]{36}$/i.test(collectionId)) throw new Error(`collection id ${JSON.stringify(collectionId)} is not a uuid`);
  const base = join(dataDir, 'index', collectionId, fileSafe(modelId));
  return { hnsw: `${base}.hnsw`, sidecar: `${base}.json`, hnswTmp: `${base}.hnsw.tmp`, sidecarTmp: `${base}.json.tmp` };
}

/** Injective and path-safe: letters, digits, '-' and non-leading '.' kept, other bytes `_XX`. */
export function fileSafe(name: string): string {
  let out = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9-]/.test(c) || (c === '.' && out !== '') ? c : `_${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Removes the files of one (collection, model) index (a deleted version). */
export async function dropIndexFiles(dataDir: string, collectionId: string, modelId: string): Promise<void> {
  await Promise.all(Object.values(indexPaths(dataDir, collectionId, modelId)).map((f) => rm(f, { force: true })));
}

/** Removes every index file of a collection (after the collection is deleted in Postgres). */
export async function dropCollectionFiles(dataDir: string, collectionId: string): Promise<void> {
  const { hnsw } = indexPaths(dataDir, collectionId, 'x');
  await rm(dirname(hnsw), { recursive: true, force: true });
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export type SaveStep = 'temp-written' | 'hnsw-renamed';

/**
 * Writes the graph and its sidecar so that a crash at any point leaves a usable pair: both go to
 * temp files and are fsynced, then the graph is renamed into place, then the sidecar. A crash
 * between the two renames leaves the new graph beside a complete new sidecar temp, which
 * `recover` rolls forward.
 */
export async function savePair(
  paths: IndexPaths,
  writeGraph: (file: string) => Promise<void>,
  fields: Omit<Sidecar, 'format' | 'bytes' | 'sha256' | 'savedAt'>,
  onStep?: (step: SaveStep) => void | Promise<void>,
): Promise<Sidecar> {
  await mkdir(dirname(paths.hnsw), { recursive: true });
  await writeGraph(paths.hnswTmp);
  await fsyncFile(paths.hnswTmp);
  const sidecar: Sidecar = {
    format: FORMAT_VERSION,
    ...fields,
    bytes: (await stat(paths.hnswTmp)).size,
    sha256: await sha256File(paths.hnswTmp),
    savedAt: new Date().toISOString(),
  };
  await writeDurably(paths.sidecarTmp, JSON.stringify(sidecar, null, 1));
  await onStep?.('temp-written');
  await rename(paths.hnswTmp, paths.hnsw);
  await fsyncFile(dirname(paths.hnsw));
  await onStep?.('hnsw-renamed');
  await rename(paths.sidecarTmp, paths.sidecar);
  await fsyncFile(dirname(paths.hnsw));
  return sidecar;
}

export type Verified =
  | { state: 'ok'; sidecar: Sidecar }
  | { state: 'missing'; reason: string }
  | { state: 'corrupt'; reason: string };

/**
 * Finishes or discards an interrupted save, then checks the pair: sidecar parses, graph size and
 * sha256 match. Nothing here reads the graph with hnswlib, which can crash on a damaged file.
 */
export async function recoverAndVerify(paths: IndexPaths): Promise<Verified & { rolledForward: boolean }> {
  let rolledForward = false;
  const pending = await readSidecar(paths.sidecarTmp);
  if (pending && (await exists(paths.hnsw)) && (await sha256File(paths.hnsw)) === pending.sha256) {
    await rename(paths.sidecarTmp, paths.sidecar);
    rolledForward = true;
  }
  await rm(paths.sidecarTmp, { force: true });
  await rm(paths.hnswTmp, { force: true });
  const [graph, side] = [await exists(paths.hnsw), await exists(paths.sidecar)];
  if (!graph) return { state: 'missing', reason: side ? 'index file missing' : 'no index files', rolledForward };
  const sidecar = await readSidecar(paths.sidecar);
  if (!sidecar) return { state: 'corrupt', reason: side ? 'sidecar unreadable' : 'sidecar missing', rolledForward };
  const size = (await stat(paths.hnsw)).size;
  if (size !== sidecar.bytes) return { state: 'corrupt', reason: `index file is ${size} bytes, sidecar says ${sidecar.bytes} (truncated?)`, rolledForward };
  if ((await sha256File(paths.hnsw)) !== sidecar.sha256) return { state: 'corrupt', reason: 'index file sha256 differs from sidecar', rolledForward };
  return { state: 'ok', sidecar, rolledForward };
}

export function encodeLabels(labels: Iterable<number>): string {
  return Buffer.from(Uint32Array.from(labels).buffer).toString('base64');
}

export function decodeLabels(b64: string): number[] {
  const buf = Buffer.from(b64, 'base64');
  if (buf.byteLength % 4) throw new Error('tombstone list is not whole uint32s');
  return Array.from(new Uint32Array(Uint8Array.from(buf).buffer));
}

async function readSidecar(file: string): Promise<Sidecar | undefined> {
  try {
    return sidecarSchema.parse(JSON.parse(await readFile(file, 'utf8')));
  } catch {
    return undefined;
  }
}

async function writeDurably(file: string, text: string): Promise<void> {
  const fh = await open(file, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function fsyncFile(file: string): Promise<void> {
  const fh = await open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
