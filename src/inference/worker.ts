/**
 * Body of the inference worker threads. onnxruntime-node's run() blocks the thread it runs on, so
 * sessions live here and never on the HTTP thread. Each thread keeps one session per graph file.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
// Static imports only: tsx's loader hooks reach a worker's require() chain but not its dynamic import().
import { toPixelValues } from './preprocess.ts';
import type { WorkerTask, WireTensor, GraphInfo, WorkerConfig } from './wire.ts';

const config = workerData as WorkerConfig;
lowerThreadPriority(config.niceness);

/**
 * onnxruntime runs on this thread (intra-op threads = 1 runs no pool of its own). Giving it a lower
 * scheduling priority than the HTTP thread keeps the event loop prompt when the cores are full:
 * without it, two busy inference threads on two cores delayed 1 ms timers by 20–60 ms.
 * Linux only (a thread's nice value is set through its TID); elsewhere a no-op.
 */
function lowerThreadPriority(niceness: number): void {
  if (niceness <= 0 || process.platform !== 'linux') return;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (tid > 0) setPriority(tid, niceness);
  } catch {
    // Not permitted or no procfs: the thread keeps the default priority.
  }
}
const sessions = new Map<string, Promise<{ session: ort.InferenceSession; provider: string }>>();

async function createSession(file: string): Promise<{ session: ort.InferenceSession; provider: string }> {
  const base: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: config.intraOpThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  };
  if (config.executionProvider === 'cuda') {
    try {
      return { session: await ort.InferenceSession.create(file, { ...base, executionProviders: ['cuda', 'cpu'] }), provider: 'cuda' };
    } catch (err) {
      // Falls back below; the pool logs the warning once with this reason.
      const session = await ort.InferenceSession.create(file, { ...base, executionProviders: ['cpu'] });
      return { session, provider: `cpu (cuda unavailable: ${(err as Error).message.split('\n')[0]})` };
    }
  }
  return { session: await ort.InferenceSession.create(file, { ...base, executionProviders: ['cpu'] }), provider: 'cpu' };
}

function sessionFor(file: string) {
  let s = sessions.get(file);
  if (!s) {
    s = createSession(file);
    sessions.set(file, s);
    s.catch(() => sessions.delete(file));
  }
  return s;
}

function toOrt(t: WireTensor): ort.Tensor {
  // Some published graphs (Immich's CLIP text) take int32 ids.
  if (t.type === 'int32') return new ort.Tensor('int32', Int32Array.from(t.data as BigInt64Array, Number), t.dims);
  return new ort.Tensor(t.type, t.data, t.dims);
}

export default async function task(t: WorkerTask): Promise<unknown> {
  switch (t.kind) {
    case 'load': {
      const { session, provider } = await sessionFor(t.file);
      const info: GraphInfo = {
        inputs: session.inputMetadata.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: m.shape.map(String) } : { name: m.name })),
        outputs: session.outputMetadata.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: m.shape.map(String) } : { name: m.name })),
        provider,
      };
      return info;
    }
    case 'run': {
      const { session } = await sessionFor(t.file);
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, tensor] of Object.entries(t.feeds)) feeds[name] = toOrt(tensor);
      const out = await session.run(feeds, t.outputs);
      const result: Record<string, { dims: number[]; data: Float32Array }> = {};
      for (const name of t.outputs) {
        const o = out[name];
        if (!o) throw new Error(`graph ${t.file} returned no output ${name}`);
        result[name] = { dims: [...o.dims], data: o.data as Float32Array };
      }
      return result;
    }
    case 'preprocess':
      return toPixelValues(t.bytes, t.spec, t.limits);
  }
}
