import type { Context } from 'hono';
import type { Collection } from '../../../db/queries/collections.ts';
import { getImage, type Image as Row } from '../../../db/queries/images.ts';
import { ingestImage } from '../../../ingest/pipeline.ts';
import type { IngestSource } from '../../../ingest/sources.ts';
import type { ApiEnv } from '../../types.ts';
import { toImage, type IngestResult } from './schema.ts';

/** How long `wait=true` holds the request for extraction before answering 202 anyway. */
export const WAIT_MS = 30_000;

/** Polls the image row until it leaves `pending` (or the wait is over). */
async function settled(c: Context<ApiEnv>, id: string, ms: number): Promise<Row | undefined> {
  const deadline = Date.now() + ms;
  let delay = 10;
  for (;;) {
    const image = await getImage(c.var.ctx.db, id);
    if (!image || image.status !== 'pending') return image;
    if (Date.now() + delay > deadline || c.req.raw.signal.aborted) return image;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 250);
  }
}

/**
 * Runs the ingest pipeline for one source: durable on return. 202 while extraction is queued,
 * 200 once the image is ready or failed (already so, or after `wait`).
 */
export async function ingestOne(c: Context<ApiEnv>, collection: Collection, source: IngestSource, wait: boolean): Promise<{ body: IngestResult; status: 200 | 202 }> {
  const ctx = c.var.ctx;
  const result = await ingestImage({ db: ctx.db, blobs: ctx.blobs, queue: ctx.queue, limits: ctx.limits }, collection, source);
  let image = await getImage(ctx.db, result.imageId);
  if (image && wait && image.status === 'pending') image = await settled(c, image.id, WAIT_MS);
  if (!image) throw new Error(`image ${result.imageId} vanished after ingest`);
  const pending = image.status === 'pending';
  return { body: { image: toImage(image), created: result.created, jobId: pending ? (result.jobId ?? null) : null }, status: pending ? 202 : 200 };
}
