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
