import { eq } from 'drizzle-orm';
import hnswlib from 'hnswlib-node';
import type { Db } from '../db/client.ts';
import { collections, models } from '../db/schema/index.ts';
import { decodeLabels, recoverAndVerify, type IndexPaths, type Sidecar } from './files.ts';
import { HnswStore, type HnswParams, type Space } from './store.ts';

export type OpenedBy = 'file' | 'rebuilt-missing' | 'rebuilt-corrupt' | 'rebuilt-stale';

/** Dimension from the model; graph parameters from the collection. */
export async function loadParams(db: Db, collectionId: string, modelId: string, space: Space): Promise<HnswParams> {
  const [c] = await db
    .select({ M: collections.hnswM, efConstruction: collections.hnswEfConstruction, efSearch: collections.hnswEfSearch })
    .from(collections)
    .where(eq(collections.id, collectionId));
  if (!c) throw new Error(`index: no collection ${collectionId}`);
  const [m] = await db.select({ dim: models.embedDim }).from(models).where(eq(models.id, modelId));
  if (!m) throw new Error(`index: no model ${modelId}`);
  return { dim: m.dim, space, M: c.M, efConstruction: c.efConstruction, efSearch: c.efSearch };
}

export type Loaded =
  | { openedBy: 'file'; store: HnswStore; sidecar: Sidecar; reason: string }
  | { openedBy: Exclude<OpenedBy, 'file'>; reason: string };

/**
 * Loads the graph when its pair verifies (before hnswlib reads a byte of it) and describes the
 * same index; otherwise says why it must be rebuilt.
 */
export async function loadVerified(paths: IndexPaths, params: HnswParams, ids: { collectionId: string; modelId: string }): Promise<Loaded> {
  const v = await recoverAndVerify(paths);
  if (v.state === 'missing') return { openedBy: 'rebuilt-missing', reason: v.reason };
  if (v.state === 'corrupt') return { openedBy: 'rebuilt-corrupt', reason: v.reason };
  const s = v.sidecar;
  const stale = staleness(s, params, ids);
  if (stale) return { openedBy: 'rebuilt-stale', reason: stale };
  try {
    const hnsw = new hnswlib.HierarchicalNSW(params.space, params.dim);
    await hnsw.readIndex(paths.hnsw, false);
    const labels = hnsw.getIdsList();
    const tombstones = decodeLabels(s.tombstones);
    if (labels.length !== s.count + s.deleted || tombstones.length !== s.deleted) {
      return { openedBy: 'rebuilt-corrupt', reason: `index holds ${labels.length} labels, sidecar says ${s.count} live + ${s.deleted} deleted` };
    }
    const store = new HnswStore(params, hnsw);
    for (const l of tombstones) store.tombstones.add(l);
    for (const l of labels) if (!store.tombstones.has(l)) store.live.add(l);
    if (store.live.size !== s.count) return { openedBy: 'rebuilt-corrupt', reason: 'tombstone list does not match the index labels' };
    return { openedBy: 'file', store, sidecar: s, reason: v.rolledForward ? 'loaded (finished an interrupted save)' : 'loaded' };
  } catch (err) {
    return { openedBy: 'rebuilt-corrupt', reason: `hnswlib could not read the file: ${(err as Error).message}` };
  }
}

function staleness(s: Sidecar, p: HnswParams, ids: { collectionId: string; modelId: string }): string | undefined {
  if (s.collectionId !== ids.collectionId || s.modelId !== ids.modelId) return `file belongs to ${s.collectionId}/${s.modelId}`;
  const want = { dim: p.dim, space: p.space, M: p.M, efConstruction: p.efConstruction };
  for (const [key, value] of Object.entries(want)) {
    const had = s[key as keyof typeof want];
    if (had !== value) return `${key} changed from ${had} to ${value}`;
  }
  return undefined;
}
