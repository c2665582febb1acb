import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { HnswStore, newHnsw } from './store.ts';

/**
 * A fresh graph holding `old`'s live vectors and no tombstones. Built in slices of ~20 ms so
 * searches and syncs go on meanwhile (against `old`); memory is briefly that of both graphs.
 */
export async function buildCompacted(old: HnswStore): Promise<HnswStore> {
  const fresh = new HnswStore(old.params, newHnsw(old.params, Math.max(Math.ceil(old.count * 1.25), 16)));
  let slice = performance.now();
  for (const label of [...old.live]) {
    if (old.live.has(label)) fresh.add(label, old.vector(label));
    if (performance.now() - slice > 20) {
      await yieldToLoop();
      slice = performance.now();
    }
  }
  return fresh;
}

/** Carries over what changed in `old` while `fresh` was built: run with mutations held off. */
export function catchUp(fresh: HnswStore, old: HnswStore): void {
  for (const label of [...fresh.live]) if (!old.live.has(label)) fresh.delete(label);
  for (const label of old.live) if (!fresh.live.has(label)) fresh.add(label, old.vector(label));
}
