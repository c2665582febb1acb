import type { JobRun, Processor } from './types.ts';
import { PermanentJobError } from './types.ts';

export type Outcome =
  | { status: 'completed'; result: unknown }
  | { status: 'retry'; error: Error }
  | { status: 'failed'; error: Error; code: string };

/**
 * Validates the payload and runs the processor: the one place that decides whether a failure is
 * retried. A bad payload or a PermanentJobError fails at once; anything else is retried while
 * attempts remain.
 */
export async function execute<C, P>(proc: Processor<C, P>, ctx: C, payload: unknown, run: JobRun): Promise<Outcome> {
  const parsed = proc.payload.safeParse(payload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const error = new PermanentJobError(`invalid ${proc.kind} payload: ${issue.path.join('.') || '(root)'}: ${issue.message}`, 'invalid_payload');
    return { status: 'failed', error, code: error.code };
  }
  try {
    return { status: 'completed', result: await proc.process(ctx, parsed.data, run) };
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    if (error instanceof PermanentJobError) return { status: 'failed', error, code: error.code };
    if (run.attempt >= proc.queue.attempts || run.signal.aborted) return { status: 'failed', error, code: 'retries_exhausted' };
    return { status: 'retry', error };
  }
}

export function backoffDelay(proc: Processor<unknown, unknown>, attempt: number): number {
  return proc.queue.backoffMs * 2 ** (attempt - 1);
}
