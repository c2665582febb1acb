import type { PreprocessSpec } from './manifest.ts';

/** Messages between the runtime and its worker threads. */
export interface WireTensor {
  /** `int32` carries its ids as BigInt64Array too; the worker narrows them. */
  type: 'float32' | 'int64' | 'int32';
  dims: number[];
  data: Float32Array | BigInt64Array;
}

export interface ImageLimits {
  maxPixels: number;
  maxBytes: number;
}

export type WorkerTask =
  | { kind: 'load'; file: string }
  | { kind: 'run'; file: string; feeds: Record<string, WireTensor>; outputs: string[] }
  | { kind: 'preprocess'; bytes: Uint8Array; spec: PreprocessSpec; limits: ImageLimits };

export interface GraphInfo {
  inputs: { name: string; type?: string; shape?: string[] }[];
  outputs: { name: string; type?: string; shape?: string[] }[];
  provider: string;
}

export interface OutputTensor {
  dims: number[];
  data: Float32Array;
}

export interface WorkerConfig {
  intraOpThreads: number;
  executionProvider: 'cpu' | 'cuda';
  /** Nice value added to inference threads so the HTTP thread wins the CPU (0 = unchanged). */
  niceness: number;
}
