import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { InferenceError } from './errors.ts';
import type { GraphInfo, OutputTensor, WireTensor, WorkerConfig, WorkerTask, ImageLimits } from './wire.ts';
import type { PreprocessSpec } from './manifest.ts';

export interface PoolOptions {
  /** Worker threads. Default: min(cores, 4). */
  threads?: number;
  /** onnxruntime intra-op threads per worker. Default: cores / threads, at least 1. */
  intraOpThreads?: number;
  executionProvider?: 'cpu' | 'cuda';
  /** Nice value for inference threads (Linux). Default 10; 0 leaves them at the process priority. */
  niceness?: number;
}

/** Threads × intra-op threads never exceed the cores unless the caller asks for it. */
export function resolvePoolSize(opts: PoolOptions = {}): { threads: number; intraOpThreads: number } {
  const cores = availableParallelism();
  const threads = opts.threads ?? Math.min(cores, 4);
  const intraOpThreads = opts.intraOpThreads ?? Math.max(1, Math.floor(cores / threads));
  return { threads, intraOpThreads };
}

const workerFile = fileURLToPath(new URL('./worker.ts', import.meta.url));

/**
 * A pool of worker threads that own the onnxruntime sessions. A thread that dies is replaced by
 * piscina; its in-flight task fails with `worker_crashed` and the next task starts a fresh thread.
 */
export class InferencePool {
  private readonly piscina: Piscina;
  readonly size: { threads: number; intraOpThreads: number };

  constructor(opts: PoolOptions = {}) {
    this.size = resolvePoolSize(opts);
    const workerData: WorkerConfig = {
      intraOpThreads: this.size.intraOpThreads,
      executionProvider: opts.executionProvider ?? 'cpu',
      niceness: opts.niceness ?? 10,
    };
    this.piscina = new Piscina({
      filename: workerFile,
      minThreads: this.size.threads,
      maxThreads: this.size.threads,
      idleTimeout: Infinity,
      workerData,
      // The worker is TypeScript: load it through tsx, as the main process is.
      execArgv: ['--import', 'tsx'],
    });
  }

  get threads() {
    return this.piscina.threads;
  }

  /** Loads a graph in every thread and returns what the graph declares. */
  async load(file: string): Promise<GraphInfo> {
    const infos = await Promise.all(
      Array.from({ length: this.size.threads }, () => this.exec<GraphInfo>({ kind: 'load', file })),
    );
    return infos[0]!;
  }

  run(file: string, feeds: Record<string, WireTensor>, outputs: string[]): Promise<Record<string, OutputTensor>> {
    return this.exec({ kind: 'run', file, feeds, outputs });
  }

  preprocess(bytes: Uint8Array, spec: PreprocessSpec, limits: ImageLimits): Promise<Float32Array> {
    return this.exec({ kind: 'preprocess', bytes, spec, limits });
  }

  private async exec<R>(task: WorkerTask): Promise<R> {
    try {
      return (await this.piscina.run(task)) as R;
    } catch (err) {
      throw rehydrate(err);
    }
  }

  close(): Promise<void> {
    return this.piscina.destroy();
  }
}

/** Errors cross the thread boundary as plain objects; give typed ones their class back. */
function rehydrate(err: unknown): Error {
  const e = err as { name?: string; code?: unknown; message?: string };
  if (e && typeof e.code === 'string' && e.name === 'InferenceError') {
    return new InferenceError(e.code as InferenceError['code'], e.message ?? '');
  }
  if (e?.message && /terminated|exited|worker/i.test(e.message) && !/onnx|graph/i.test(e.message)) {
    return new InferenceError('worker_crashed', `an inference worker stopped: ${e.message}`);
  }
  if (err instanceof InferenceError) return err;
  return new InferenceError('inference_failed', e?.message ?? String(err));
}
