import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Runtime } from '../../src/inference/runtime.ts';
import { fakePixels, TINY_BLIP } from './helpers.ts';

// Runs in the `timing` group: alone, after the rest of the suite (vitest.config.ts).
let rt: Runtime;
beforeAll(async () => {
  rt = await Runtime.open(TINY_BLIP, { threads: 2, intraOpThreads: 1, maxWaitMs: 5 });
});
afterAll(() => rt?.close());

describe('inference off the event loop', () => {
  it('keeps the event loop responsive during back-to-back inference (p99 timer lag under 100 ms)', async () => {
    const s = rt.manifest.preprocess.size;
    const work = async () => {
      await Promise.all(Array.from({ length: 64 }, (_, i) => rt.embedPixels(fakePixels(i, s))));
      await rt.caption({ tokens: (await rt.embedPixels(fakePixels(1, s))).tokens! }, { method: 'beam' });
    };
    await work(); // warm-up: JIT and session initialisation are not what this measures
    const lags: number[] = [];
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      lags.push(now - last - 1);
      last = now;
    }, 1);
    const elu0 = performance.eventLoopUtilization();
    const started = performance.now();
    let rounds = 0;
    while (performance.now() - started < 1500) {
      await work();
      rounds++;
    }
    const elu = performance.eventLoopUtilization(elu0);
    clearInterval(timer);
    lags.sort((a, b) => a - b);
    const p99 = lags[Math.floor(lags.length * 0.99)]!;
    const max = lags[lags.length - 1]!;
    const seen = `utilization ${elu.utilization.toFixed(2)}, p99 timer lag ${p99.toFixed(1)} ms (max ${max.toFixed(1)} ms over ${lags.length} ticks), ${rounds} rounds`;
    console.log(`event loop during inference: ${seen}`);
    expect(rounds).toBeGreaterThan(1);
    // A 1 ms timer on a shared 2-core machine: the bound is loose so that other processes taking
    // the cores do not fail it, and tight enough to catch a run() on this thread (the default
    // captioner's beam search blocks for hundreds of ms). The figure itself is bench:runtime's
    // eventLoop.maxLagMs, measured side by side with the bare engine.
    expect(p99, seen).toBeLessThan(100);
  });
});
