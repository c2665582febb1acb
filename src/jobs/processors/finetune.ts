import { finetune, type FinetuneDeps } from '../../finetune/run.ts';
import { finetunePayload, type FinetunePayload } from '../../finetune/payload.ts';
import type { Processor } from '../types.ts';

/**
 * Fine-tunes a collection's BLIP embedder in a Python child process (src/finetune). One at a time
 * per worker: the trainer uses every core (or the GPU). A second try only follows a worker that
 * stopped mid-run; the trainer's own failures are final.
 */
export const finetuneProcessor: Processor<FinetuneDeps, FinetunePayload> = {
  kind: 'finetune',
  payload: finetunePayload,
  queue: { attempts: 2, backoffMs: 5000, concurrency: 1, keepCompleted: 100, keepFailed: 500 },
  process: (deps, p, run) => finetune(deps, p, run),
};
