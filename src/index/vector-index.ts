import { sql } from 'drizzle-orm';
import { rowsOf } from '../db/client.ts';
import { readChanges, readVectors } from './changes.ts';
import { buildCompacted, catchUp } from './compaction.ts';
import { encodeLabels, indexPaths, savePair, type IndexPaths } from './files.ts';
import { Follower } from './follow.ts';
import { Horizon } from './horizon.ts';
import { loadParams, loadVerified, type OpenedBy } from './load.ts';
import type { SearchHit } from './exact.ts';
import type { IndexLogger, OpenIndexOptions, SyncResult } from './options.ts';
import { HnswStore, INITIAL_CAPACITY, newHnsw, type HnswParams, type SearchOptions } from './store.ts';

const silent: IndexLogger = { info() {}, warn() {} };

/**
 * The HNSW index of one (collection, model): derived from Postgres, persisted beside a sidecar
 * that records the last change it holds. Mutations (sync, save, the compaction swap) run one at
 * a time; searches run any time against the current graph.
 */
export class VectorIndex {
  private lock: Promise<unknown> = Promise.resolve();
  private dirtySince: number | undefined;
  private compaction: Promise<void> | undefined;
  private fileBytes = 0;
  /** catchUp: the highest number a full sync has caught up to, and the syncs under way. */
  private caughtUpTo = 0;
  private readonly catchingUp = new Map<number, Promise<void>>();
  private readonly follower = new Follower(this);

  private constructor(
    private readonly opts: OpenIndexOptions,
    readonly params: HnswParams,
    private readonly paths: IndexPaths,
    private store: HnswStore,
    private readonly horizon: Horizon,
    readonly openedBy: OpenedBy,
    readonly openReason: string,
  ) {}

  static async open(opts: OpenIndexOptions): Promise<VectorIndex> {
    const started = performance.now();
    const { db, collectionId, modelId } = opts;
    const log = opts.logger ?? silent;
    const params = await loadParams(db, collectionId, modelId, opts.space ?? 'cosine');
    const paths = indexPaths(opts.dataDir, collectionId, modelId);
    let loaded = await loadVerified(paths, params, { collectionId, modelId });
    if (loaded.openedBy === 'file') {
      const [{ last } = { last: '0' }] = rowsOf<{ last: string }>(await db.execute(sql`select last_value::text as last from index_change_seq`));
      if (loaded.sidecar.seen > Number(last)) loaded = { openedBy: 'rebuilt-stale', reason: `file has read change ${loaded.sidecar.seen}, Postgres is at ${last}` };
    }
    const fromFile = loaded.openedBy === 'file' ? loaded : undefined;
    const store = fromFile?.store ?? new HnswStore(params, newHnsw(params, opts.initialCapacity ?? INITIAL_CAPACITY));
    const horizon = new Horizon(fromFile?.sidecar.lastApplied ?? 0, fromFile?.sidecar.seen ?? 0, opts.graceMs);
    const index = new VectorIndex(opts, params, paths, store, horizon, loaded.openedBy, loaded.reason);
    index.fileBytes = fromFile?.sidecar.bytes ?? 0;
    const where = { collectionId, modelId, file: paths.hnsw, reason: loaded.reason };
    if (loaded.openedBy === 'rebuilt-corrupt' || loaded.openedBy === 'rebuilt-stale') log.warn(where, `index file unusable (${loaded.reason}): rebuilding from Postgres`);
    else if (loaded.openedBy === 'rebuilt-missing') log.info(where, 'no index file: building from Postgres');
    const replay = await index.sync();
    if (!fromFile) await index.exclusive(() => index.saveAndReload());
    log.info(
      { ...where, openedBy: loaded.openedBy, fromChange: fromFile?.sidecar.lastApplied ?? 0, ...replay, count: store.count, ms: Math.round(performance.now() - started) },
      fromFile ? `index loaded from file, replayed ${replay.added} adds and ${replay.deleted} deletes` : `index rebuilt from Postgres (${store.count} vectors)`,
    );
    return index;
  }

  get lastApplied(): number {
    return this.horizon.safe;
  }

  /**
   * Makes sure every change numbered up to `seq`, committed before this call, is in the index: one
   * full sync started now reads them all (a follow tick that began earlier may have missed the
   * newest). Called once per `seq` however many searches ask at the same time.
   */
  catchUp(seq: number): Promise<void> {
    if (this.horizon.safe >= seq || this.caughtUpTo >= seq) return Promise.resolve();
    let pending = this.catchingUp.get(seq);
    if (!pending) {
      pending = this.sync().then(() => {
        this.caughtUpTo = Math.max(this.caughtUpTo, seq);
      });
      pending.finally(() => this.catchingUp.delete(seq)).catch(() => undefined);
      this.catchingUp.set(seq, pending);
    }
    return pending;
  }

  /** Which (collection, model) this index serves. */
  get ids(): { collectionId: string; modelId: string } {
    return { collectionId: this.opts.collectionId, modelId: this.opts.modelId };
  }

  get log(): IndexLogger {
    return this.opts.logger ?? silent;
  }

  /** Applies every change above lastApplied, in pages. Idempotent. */
  sync(): Promise<SyncResult> {
    const done = this.exclusive(async () => {
      const { db, collectionId, modelId, pageSize } = this.opts;
      const result = { added: 0, deleted: 0 };
      let after = this.horizon.safe;
      for (;;) {
        const page = await readChanges(db, { collectionId, modelId, after, vectorsAbove: this.horizon.seen, limit: pageSize });
        const missing = page.adds.filter((a) => !a.vector && !this.store.live.has(a.label) && !this.store.tombstones.has(a.label)).map((a) => a.label);
        const fetched = missing.length ? await readVectors(db, { collectionId, modelId, labels: missing }) : undefined;
        for (const a of page.adds) {
          const vector = a.vector ?? fetched?.get(a.label);
          if (vector && this.store.add(a.label, vector)) result.added++;
        }
        for (const d of page.deletes) if (this.store.delete(d.label)) result.deleted++;
        const top = Math.max(after, page.adds.at(-1)?.label ?? 0, page.deletes.at(-1)?.deletedSeq ?? 0);
        this.horizon.observe(page.snapshot, Number.isFinite(page.complete) ? page.complete : top);
        if (!Number.isFinite(page.complete)) break;
        after = page.complete;
      }
      if (result.added || result.deleted) this.dirtySince ??= Date.now();
      return { ...result, lastApplied: this.horizon.safe };
    });
    return done.then((r) => {
      if (this.store.tombstoneRatio > (this.opts.compactAbove ?? 0.2)) void this.compact();
      return r;
    });
  }

  search(vector: ArrayLike<number>, k: number, opts?: SearchOptions): SearchHit[] {
    return this.store.search(vector, k, opts);
  }

  /** Writes the graph and sidecar atomically (see files.ts). */
  save(): Promise<void> {
    return this.exclusive(() => this.saveLocked());
  }

  get unsavedForMs(): number {
    return this.dirtySince === undefined ? 0 : Date.now() - this.dirtySince;
  }

  /**
   * Rebuilds the graph from its live vectors without tombstones, then swaps and saves. Changes
   * applied meanwhile land in the old graph and are carried over at the swap. A crash before the
   * save completes leaves the previous files, which reopen and replay as usual.
   */
  compact(): Promise<void> {
    this.compaction ??= this.runCompaction()
      .catch((err: unknown) => this.log.warn({ err, collectionId: this.opts.collectionId }, 'index compaction failed; keeping the current graph'))
      .finally(() => (this.compaction = undefined));
    return this.compaction;
  }

  private async runCompaction(): Promise<void> {
    const old = this.store;
    const before = { count: old.count, deleted: old.tombstones.size };
    const fresh = await buildCompacted(old);
    await this.opts.onStep?.('compaction-built');
    await this.exclusive(async () => {
      catchUp(fresh, old);
      this.store = fresh;
      await this.saveAndReload();
    });
    this.log.info({ collectionId: this.opts.collectionId, modelId: this.opts.modelId, before, after: { count: fresh.count, deleted: fresh.tombstones.size } }, 'index compacted');
  }

  /** Polls Postgres every `intervalMs` and saves when changes have waited `saveEveryMs`. */
  startFollowing(intervalMs = 500, opts: { saveEveryMs?: number } = {}): void {
    this.follower.start(intervalMs, opts.saveEveryMs ?? 60_000);
  }

  stopFollowing(): Promise<void> {
    return this.follower.stop();
  }

  /** Resolves when no mutation or compaction is running. */
  async idle(): Promise<void> {
    while (this.compaction) await this.compaction;
    await this.lock;
  }

  stats() {
    const s = this.store;
    return {
      count: s.count,
      deleted: s.tombstones.size,
      tombstoneRatio: s.tombstoneRatio,
      capacity: s.hnsw.getMaxElements(),
      /** Size of the last saved file. */
      bytes: this.fileBytes,
      lastApplied: this.horizon.safe,
      openedBy: this.openedBy,
    };
  }

  /** Stops following, lets a compaction finish, and saves unsaved changes. */
  async close(opts: { save?: boolean } = {}): Promise<void> {
    await this.stopFollowing();
    await this.idle();
    if ((opts.save ?? true) && this.dirtySince !== undefined) await this.save();
  }

  /**
   * Saves, then searches the graph as read back from the file: hnswlib lays a loaded graph out
   * contiguously, and the benchmark found one built point by point ~8% slower to search.
   */
  private async saveAndReload(): Promise<void> {
    await this.saveLocked();
    const { collectionId, modelId } = this.opts;
    const loaded = await loadVerified(this.paths, this.params, { collectionId, modelId });
    if (loaded.openedBy === 'file') this.store = loaded.store;
    else this.log.warn({ collectionId, modelId, reason: loaded.reason }, 'index file just saved does not load; keeping the graph in memory');
  }

  private async saveLocked(): Promise<void> {
    const { collectionId, modelId, onStep } = this.opts;
    const s = this.store;
    const fields = { collectionId, modelId, lastApplied: this.horizon.safe, seen: this.horizon.seen, ...pick(this.params), count: s.count, deleted: s.tombstones.size, tombstones: encodeLabels(s.tombstones) };
    const sidecar = await savePair(this.paths, (file) => s.hnsw.writeIndex(file).then(() => undefined), fields, onStep);
    this.fileBytes = sidecar.bytes;
    this.dirtySince = undefined;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }
}

function pick({ dim, space, M, efConstruction }: HnswParams) {
  return { dim, space, M, efConstruction };
}
