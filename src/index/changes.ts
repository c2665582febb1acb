import { and, asc, eq, gt, inArray, isNull, sql } from 'drizzle-orm';
import { rowsOf, type Db } from '../db/client.ts';
import { embeddings } from '../db/schema/index.ts';

/**
 * The change stream of one (collection, model) as the index reads it. Written here rather than
 * in src/db/queries because the reader also needs the transaction snapshot the rows were read in
 * (see horizon.ts): a label is taken from the sequence before its row commits, so rows can
 * become visible out of label order.
 */
export interface Snapshot {
  /** Every transaction id below this has finished. */
  xmin: bigint;
  /** Every transaction id at or above this had not started. */
  xmax: bigint;
}

export interface ChangePage {
  snapshot: Snapshot;
  /** Live rows with label > after, in label order; vector is null at or below `vectorsAbove`. */
  adds: { label: number; vector: Float32Array | null }[];
  /** Rows with deleted_seq > after, in deleted_seq order. */
  deletes: { label: number; deletedSeq: number }[];
  /**
   * Changes are complete up to this number: the lower end of a full page. Infinity when neither
   * list was cut short.
   */
  complete: number;
}

export interface ChangeQuery {
  collectionId: string;
  modelId: string;
  after: number;
  /** Labels the caller already holds vectors for: their rows come back without one. */
  vectorsAbove?: number;
  limit?: number;
}

/** One page of adds and deletes above `after`, read in one repeatable-read snapshot. */
export async function readChanges(db: Db, q: ChangeQuery): Promise<ChangePage> {
  const limit = q.limit ?? 2000;
  const vectorsAbove = q.vectorsAbove ?? q.after;
  const scope = and(eq(embeddings.collectionId, q.collectionId), eq(embeddings.modelId, q.modelId));
  return db.transaction(
    async (tx) => {
      const snap = rowsOf<{ xmin: string; xmax: string }>(
        await tx.execute(sql`select pg_snapshot_xmin(pg_current_snapshot())::text as xmin, pg_snapshot_xmax(pg_current_snapshot())::text as xmax`),
      )[0]!;
      const adds = await tx
        .select({
          label: embeddings.label,
          vector: sql<Float32Array | null>`case when ${embeddings.label} > ${vectorsAbove} then ${embeddings.vector} end`.mapWith(embeddings.vector),
        })
        .from(embeddings)
        .where(and(scope, gt(embeddings.label, q.after), isNull(embeddings.deletedSeq)))
        .orderBy(asc(embeddings.label))
        .limit(limit);
      const deleted = await tx
        .select({ label: embeddings.label, deletedSeq: embeddings.deletedSeq })
        .from(embeddings)
        .where(and(scope, gt(embeddings.deletedSeq, q.after)))
        .orderBy(asc(embeddings.deletedSeq))
        .limit(limit);
      const deletes = deleted.map((d) => ({ label: d.label, deletedSeq: d.deletedSeq! }));
      let complete = Infinity;
      if (adds.length === limit) complete = Math.min(complete, adds[adds.length - 1]!.label);
      if (deletes.length === limit) complete = Math.min(complete, deletes[deletes.length - 1]!.deletedSeq);
      return {
        snapshot: { xmin: BigInt(snap.xmin), xmax: BigInt(snap.xmax) },
        adds: adds.filter((a) => a.label <= complete),
        deletes: deletes.filter((d) => d.deletedSeq <= complete),
        complete,
      };
    },
    { isolationLevel: 'repeatable read', accessMode: 'read only' },
  );
}

/** Vectors of the given live labels (those a page returned without one). */
export async function readVectors(db: Db, q: { collectionId: string; modelId: string; labels: number[] }): Promise<Map<number, Float32Array>> {
  const out = new Map<number, Float32Array>();
  for (let i = 0; i < q.labels.length; i += 1000) {
    const rows = await db
      .select({ label: embeddings.label, vector: embeddings.vector })
      .from(embeddings)
      .where(
        and(
          eq(embeddings.collectionId, q.collectionId),
          eq(embeddings.modelId, q.modelId),
          inArray(embeddings.label, q.labels.slice(i, i + 1000)),
          isNull(embeddings.deletedSeq),
        ),
      );
    for (const r of rows) out.set(r.label, r.vector);
  }
  return out;
}
