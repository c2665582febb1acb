import { describe, expect, it } from 'vitest';
import { DynamicBatcher, type BatchEvent } from '../../src/inference/batcher.ts';

function recorder(delayMs = 5) {
  const batches: number[][] = [];
  const run = async (items: number[]) => {
    batches.push(items);
    await new Promise((r) => setTimeout(r, delayMs));
    return items.map((x) => x * 10);
  };
  return { batches, run };
}

describe('dynamic batching', () => {
  it('coalesces concurrent calls into one batch and returns each caller its own result', async () => {
    const { batches, run } = recorder();
    const b = new DynamicBatcher(run, { maxBatch: 16, maxWaitMs: 5, maxInFlight: 1 });
    const out = await Promise.all([1, 2, 3, 4].map((x) => b.submit(x)));
    expect(out).toEqual([10, 20, 30, 40]);
    expect(batches).toEqual([[1, 2, 3, 4]]);
  });

  it('never exceeds the maximum batch size', async () => {
    const { batches, run } = recorder();
    const b = new DynamicBatcher(run, { maxBatch: 3, maxWaitMs: 5, maxInFlight: 1 });
    const out = await b.submitAll([1, 2, 3, 4, 5, 6, 7]);
    expect(out).toEqual([10, 20, 30, 40, 50, 60, 70]);
    expect(Math.max(...batches.map((x) => x.length))).toBe(3);
    expect(batches.flat()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('sends what queued while the workers were busy as the next batch', async () => {
    const { batches, run } = recorder(20);
    const events: BatchEvent[] = [];
    const b = new DynamicBatcher(run, { maxBatch: 64, maxWaitMs: 1, maxInFlight: 1 }, (e) => events.push(e));
    const first = b.submit(1);
    await new Promise((r) => setTimeout(r, 5)); // the first batch is now running
    const rest = Promise.all([2, 3, 4, 5].map((x) => b.submit(x)));
    await Promise.all([first, rest]);
    expect(batches).toEqual([[1], [2, 3, 4, 5]]);
    expect(events.map((e) => e.size)).toEqual([1, 4]);
  });

  it('rejects every caller of a failed batch and keeps serving afterwards', async () => {
    let fail = true;
    const b = new DynamicBatcher(
      async (items: number[]) => {
        if (fail) throw new Error('boom');
        return items;
      },
      { maxBatch: 8, maxWaitMs: 1, maxInFlight: 2 },
    );
    const results = await Promise.allSettled([b.submit(1), b.submit(2)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    await expect(b.submit(3)).resolves.toBe(3);
  });
});
