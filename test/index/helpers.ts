import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { eq } from 'drizzle-orm';
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { openDatabase, type Database, type Db } from '../../src/db/client.ts';
import { createCollection, deleteCollection } from '../../src/db/queries/collections.ts';
import { deleteImage } from '../../src/db/queries/images.ts';
import { insertEmbeddings } from '../../src/db/queries/embeddings.ts';
import { registerModel } from '../../src/db/queries/models.ts';
import { images, models } from '../../src/db/schema/index.ts';

export const DATABASE_URL = process.env.DATABASE_URL;

/** Both database modes; the Postgres one is skipped (and says why) without DATABASE_URL. */
export const modes = [
  { mode: 'embedded (PGlite)', url: undefined, skip: false },
  { mode: 'service (Postgres)', url: DATABASE_URL, skip: !DATABASE_URL },
] as const;
export type Mode = (typeof modes)[number];

/** A temp folder removed after the file's tests. */
export function useTempDirs(): () => Promise<string> {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  return async () => {
    const d = await mkdtemp(join(tmpdir(), 'mira-index-'));
    dirs.push(d);
    return d;
  };
}

/** The database for one describe block, migrated, closed after. */
export function useDatabase(m: Mode, tempDir: () => Promise<string>): () => Db {
  let database: Database | undefined;
  beforeAll(async () => {
    if (m.skip) return;
    database = m.url ? await openDatabase({ url: m.url }) : await openDatabase({ dataDir: await tempDir() });
  });
  afterAll(() => database?.close());
  return () => {
    if (!database) throw new Error('database not open');
    return database.db;
  };
}

export interface Owned {
  collectionId: string;
  modelId: string;
  dim: number;
  cleanup(): Promise<void>;
}

/** A model and a collection only this test uses. */
export async function ownCollection(db: Db, dim = 8, hnsw: { hnswM?: number; hnswEfConstruction?: number; hnswEfSearch?: number } = {}): Promise<Owned> {
  const s = randomBytes(4).toString('hex');
  const { model } = await registerModel(db, { name: `index-test-${s}`, version: '1', family: 'clip', path: `/nowhere/${s}`, checksum: randomUUID(), embedDim: dim, manifest: {} });
  const collection = await createCollection(db, { name: `index-test-${s}`, embedder: model.id, ...hnsw });
  return {
    collectionId: collection.id,
    modelId: model.id,
    dim,
    cleanup: async () => {
      await deleteCollection(db, collection.id);
      await db.delete(models).where(eq(models.id, model.id));
    },
  };
}

/** Inserts one image (with metadata) and one embedding per vector; returns the labels in order. */
export async function addVectors(db: Db, o: Owned, vectors: Float32Array[], metadata: (i: number) => Record<string, unknown> = () => ({})): Promise<{ labels: number[]; imageIds: string[] }> {
  const labels: number[] = [];
  const imageIds: string[] = [];
  for (let start = 0; start < vectors.length; start += 500) {
    const chunk = vectors.slice(start, start + 500);
    const rows = chunk.map((_, i) => ({
      collectionId: o.collectionId,
      sha256: randomBytes(32).toString('hex'),
      source: 'upload:test.png',
      mime: 'image/png',
      width: 4,
      height: 4,
      bytes: 64,
      metadata: metadata(start + i),
    }));
    const ids = (await db.insert(images).values(rows).returning({ id: images.id })).map((r) => r.id);
    const stored = await insertEmbeddings(db, { collectionId: o.collectionId, modelId: o.modelId, items: ids.map((imageId, i) => ({ imageId, vector: chunk[i]! })) });
    labels.push(...stored.map((s) => s!.label));
    imageIds.push(...ids);
  }
  return { labels, imageIds };
}

export async function deleteImages(db: Db, imageIds: string[]): Promise<void> {
  for (const id of imageIds) await deleteImage(db, id);
}

/** Deterministic unit vectors (mulberry32 + Box-Muller). */
export function unitVectors(n: number, dim: number, seed = 1): Float32Array[] {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: n }, () => {
    const v = new Float32Array(dim);
    let s = 0;
    for (let i = 0; i < dim; i++) {
      v[i] = Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
      s += v[i]! * v[i]!;
    }
    for (let i = 0; i < dim; i++) v[i]! /= Math.sqrt(s);
    return v;
  });
}

/** Exact top k labels by cosine (inputs are unit vectors). */
export function bruteForce(query: Float32Array, vectors: Map<number, Float32Array>, k: number): number[] {
  const scored = [...vectors].map(([label, v]) => ({ label, s: v.reduce((acc, x, i) => acc + x * query[i]!, 0) }));
  return scored.sort((a, b) => b.s - a.s).slice(0, k).map((x) => x.label);
}

/** A real pino logger writing into an array, to read what the index logged. */
export function captureLogger() {
  const lines: { level: number; msg: string; [key: string]: unknown }[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

/** Polls `check` until it returns a value other than undefined, or throws after `ms`. */
export async function waitFor<T>(what: string, ms: number, check: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
