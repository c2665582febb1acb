import { jobKinds } from '../db/schema/jobs.ts';
import type { JobKind, Processor } from './types.ts';

/** Checked at startup: every job kind that can be enqueued has exactly one processor. */
export function processorTable<C>(processors: Processor<C, any>[], kinds: readonly JobKind[] = jobKinds): Map<JobKind, Processor<C, any>> {
  const table = new Map<JobKind, Processor<C, any>>();
  for (const p of processors) {
    if (table.has(p.kind)) throw new Error(`job kind "${p.kind}" has two processors`);
    table.set(p.kind, p);
  }
  const missing = kinds.filter((k) => !table.has(k));
  if (missing.length) throw new Error(`job kinds without a processor: ${missing.join(', ')}`);
  return table;
}
