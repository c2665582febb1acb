import { z } from 'zod';
import { REEXTRACT_ATTEMPTS, reextract, type ReextractDeps } from '../../reextract/run.ts';
import type { Processor } from '../types.ts';

const payload = z.object({ collectionId: z.string().uuid(), modelId: z.string().min(1).max(200) });
export type ReextractPayload = z.infer<typeof payload>;

/**
 * Re-extracts a collection with another embedder version into a shadow version and switches to it
 * once complete (src/reextract). One at a time per worker: each runs big vision batches already.
 */
export const reextractProcessor: Processor<ReextractDeps, ReextractPayload> = {
  kind: 'reextract',
  payload,
  queue: { attempts: REEXTRACT_ATTEMPTS, backoffMs: 2000, concurrency: 1, keepCompleted: 100, keepFailed: 500 },
  process: (deps, p, run) => reextract(deps, p, run),
};
