import { extract, type ExtractDeps } from '../../extract/run.ts';
import { extractPayload, type ExtractPayload } from '../../extract/payload.ts';
import type { Processor } from '../types.ts';

/**
 * Bulk feature extraction into files Python opens directly (src/extract). One at a time per
 * worker: a job already keeps the runtime's batches full. Retries resume at the first unfinished
 * chunk.
 */
export const extractProcessor: Processor<ExtractDeps, ExtractPayload> = {
  kind: 'extract',
  payload: extractPayload,
  queue: { attempts: 5, backoffMs: 2000, concurrency: 1, keepCompleted: 100, keepFailed: 500 },
  process: (deps, p, run) => extract(deps, p, run),
};
