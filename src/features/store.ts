import { endianness } from 'node:os';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { Db } from '../db/client.ts';
import { NotFound } from '../db/errors.ts';
import { imageKeys } from '../db/queries/images.ts';
import type { Runtime } from '../inference/runtime.ts';
import type { BlobStore } from '../storage/blob.ts';
import { decodeHalf, encodeHalf } from './fp16.ts';

/**
 * Image token sequences [N × D] for ITM re-ranking, as little-endian fp16, in one lmdb
 * environment per data folder with one database per model id, keyed by image id. Derived data:
 * anything missing or lost is recomputed from the original.
 */
export class TokenFeatureStore {
  private readonly dbs = new Map<string, Database<Buffer, string>>();

  private constructor(private readonly env: RootDatabase) {}

  static async open(dir: string): Promise<TokenFeatureStore> {
    if (endianness() !== 'LE') throw new Error('the token-feature store is written little-endian and reads it without swapping');
    // Reads are memory-mapped; a put resolves once its commit is flushed to disk.
    return new TokenFeatureStore(open({ path: dir, maxDbs: 256, compression: false }));
  }

  private db(modelId: string): Database<Buffer, string> {
    let db = this.dbs.get(modelId);
    if (!db) {
      db = this.env.openDB<Buffer, string>({ name: modelId, encoding: 'binary' });
      this.dbs.set(modelId, db);
    }
    return db;
  }

  async put(modelId: string, imageId: string, tokens: Float32Array): Promise<void> {
    await this.db(modelId).put(imageId, encodeHalf(tokens));
  }

  /** The stored tokens (fp16 values widened to fp32) in the order asked; undefined where there are none. */
  getMany(modelId: string, imageIds: string[]): (Float32Array | undefined)[] {
    const db = this.db(modelId);
    // getBinaryFast lends a buffer that the next read reuses: decode before reading on.
    return imageIds.map((id) => {
      const bytes = db.getBinaryFast(id);
      return bytes ? decodeHalf(bytes) : undefined;
    });
  }

  async delete(modelId: string, imageId: string): Promise<boolean> {
    return this.db(modelId).remove(imageId);
  }

  async close(): Promise<void> {
    await this.env.close();
  }
}

export const openTokenStore = (dir: string): Promise<TokenFeatureStore> => TokenFeatureStore.open(dir);

/** Where re-ranking gets each candidate's image tokens. */
export interface TokenSource {
  /** One sequence per image id, in order; fails naming an image whose original is gone. */
  tokensFor(modelId: string, imageIds: string[]): Promise<Float32Array[]>;
}

export interface RecomputeDeps {
  db: Db;
  blobs: BlobStore;
  /** The open runtime of a registered model. */
  runtime: (modelId: string) => Promise<Runtime>;
}

/** Runs the vision graph again on each original: no storage, one vision forward per candidate. */
export class RecomputedTokens implements TokenSource {
  constructor(private readonly deps: RecomputeDeps) {}

  async tokensFor(modelId: string, imageIds: string[]): Promise<Float32Array[]> {
    if (imageIds.length === 0) return [];
    const [runtime, keys] = await Promise.all([this.deps.runtime(modelId), imageKeys(this.deps.db, imageIds)]);
    const originals = await Promise.all(
      imageIds.map(async (id) => {
        const key = keys.get(id);
        const bytes = key ? await this.deps.blobs.get(key, 'original') : undefined;
        if (!bytes) throw new NotFound(key ? 'original of image' : 'image', id);
        return bytes;
      }),
    );
    const embedded = await runtime.embedImages(originals);
    return embedded.map((e, i) => {
      if (!e.tokens) throw new Error(`model ${modelId} has no image tokens for ITM (image ${imageIds[i]})`);
      return e.tokens;
    });
  }
}

/** Reads the store; what it lacks is recomputed and written back. */
export class StoredTokens implements TokenSource {
  constructor(
    private readonly store: TokenFeatureStore,
    private readonly fallback: TokenSource,
  ) {}

  async tokensFor(modelId: string, imageIds: string[]): Promise<Float32Array[]> {
    const found = this.store.getMany(modelId, imageIds);
    const missing = imageIds.filter((_, i) => !found[i]);
    if (missing.length === 0) return found as Float32Array[];
    const computed = await this.fallback.tokensFor(modelId, missing);
    await Promise.all(missing.map((id, j) => this.store.put(modelId, id, computed[j]!)));
    let j = 0;
    return found.map((f) => f ?? computed[j++]!);
  }
}

/** The TokenSource that MIRA_TOKEN_FEATURES names. */
export function tokenSource(mode: 'store' | 'recompute', deps: RecomputeDeps & { features: TokenFeatureStore }): TokenSource {
  const recompute = new RecomputedTokens(deps);
  return mode === 'store' ? new StoredTokens(deps.features, recompute) : recompute;
}
