import { dropIndexFiles } from './files.ts';
import type { OpenIndexOptions } from './options.ts';
import { VectorIndex } from './vector-index.ts';

export type RegistryOptions = Omit<OpenIndexOptions, 'collectionId' | 'modelId'> & {
  /** Replicas follow Postgres at this interval; leave out for a process that syncs after its own writes. */
  followMs?: number;
};

/** One open VectorIndex per (collection, model version), opened on first use. */
export class IndexRegistry {
  private readonly open = new Map<string, Promise<VectorIndex>>();

  constructor(private readonly opts: RegistryOptions) {}

  get(collectionId: string, modelId: string): Promise<VectorIndex> {
    const key = `${collectionId}\u0000${modelId}`;
    let index = this.open.get(key);
    if (!index) {
      index = VectorIndex.open({ ...this.opts, collectionId, modelId }).then((ix) => {
        if (this.opts.followMs) ix.startFollowing(this.opts.followMs);
        return ix;
      });
      index.catch(() => this.open.delete(key));
      this.open.set(key, index);
    }
    return index;
  }

  /** Forgets the index of a deleted version: closes it without saving and removes its files. */
  async drop(collectionId: string, modelId: string): Promise<void> {
    const key = `${collectionId}\u0000${modelId}`;
    const index = this.open.get(key);
    this.open.delete(key);
    const ix = await index?.catch(() => undefined);
    await ix?.close({ save: false });
    await dropIndexFiles(this.opts.dataDir, collectionId, modelId);
  }

  async all(): Promise<VectorIndex[]> {
    const settled = await Promise.allSettled(this.open.values());
    return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  }

  async close(): Promise<void> {
    const indexes = await this.all();
    this.open.clear();
    await Promise.all(indexes.map((ix) => ix.close()));
  }
}
