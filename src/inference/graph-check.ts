/**
 * Checks an ONNX graph against what a bundle says about it: input and output names, element types
 * and fixed dimensions. Shared by the bundle loader and the importers, so every bundle failure reads
 * the same: one line, `<file>: <what was expected>, <what the graph has>`.
 */
import { stat } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { InferenceError } from './errors.ts';

/** One input or output of a graph. `shape` entries are numbers (fixed) or strings (symbolic). */
export interface TensorIO {
  name: string;
  /** onnxruntime's element type (float32, int64, int32, float16, ...); undefined when unknown. */
  type?: string;
  /** undefined when unknown; [] for a scalar. */
  shape?: ReadonlyArray<number | string>;
}

export interface GraphIO {
  inputs: TensorIO[];
  outputs: TensorIO[];
}

/**
 * What a graph is checked with: a path (a session is created and released), an open session, or an
 * already-described graph such as the runtime's `GraphInfo` (whose shapes are strings).
 */
export type GraphSource =
  | string
  | ort.InferenceSession
  | { inputs: ReadonlyArray<TensorIO>; outputs: ReadonlyArray<TensorIO> };

export interface ExpectedIO {
  /** Inputs the caller feeds; each must exist. */
  inputs: readonly string[];
  /** Outputs the caller reads; each must exist. */
  outputs: readonly string[];
  /** Inputs the caller feeds when the graph has them (e.g. a CLIP text graph's attention_mask). */
  optionalInputs?: readonly string[];
  /**
   * Every input of an ONNX graph must be fed, so by default a graph input the caller does not
   * name is an error. Set false to skip that check.
   */
  strictInputs?: boolean;
  /** Allowed element types per tensor name. */
  types?: Readonly<Record<string, string | readonly string[]>>;
  /**
   * Expected dimensions per tensor name: a number must match a fixed graph dimension (a symbolic
   * one passes); null accepts anything. The rank must match when the graph gives one.
   */
  dims?: Readonly<Record<string, ReadonlyArray<number | null>>>;
}

function fail(file: string, msg: string, cause?: unknown): never {
  throw new InferenceError('bundle_invalid', `${file}: ${msg}`, cause === undefined ? undefined : { cause });
}

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n').find((s) => s.trim())?.trim() ?? 'unknown error';

/** Opens a graph; a missing file or an invalid model is a one-line `bundle_invalid`. */
export async function openGraph(file: string, options?: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  const st = await stat(file).catch(() => undefined);
  if (!st) fail(file, 'missing (expected an ONNX graph here)');
  if (!st.isFile() || st.size === 0) fail(file, 'not a file, or empty (expected an ONNX graph)');
  try {
    return await ort.InferenceSession.create(file, { graphOptimizationLevel: 'basic', ...options });
  } catch (e) {
    fail(file, `not a valid ONNX model for onnxruntime (${firstLine(e)})`, e);
  }
}

function isSession(src: GraphSource): src is ort.InferenceSession {
  return typeof src === 'object' && typeof (src as ort.InferenceSession).run === 'function';
}

/** Names, types and shapes of a session's inputs and outputs. */
export function describeSession(session: ort.InferenceSession): GraphIO {
  const meta = (list: readonly ort.InferenceSession.ValueMetadata[] | undefined, names: readonly string[]): TensorIO[] =>
    list && list.length === names.length
      ? list.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name }))
      : names.map((name) => ({ name }));
  return {
    inputs: meta(session.inputMetadata, session.inputNames),
    outputs: meta(session.outputMetadata, session.outputNames),
  };
}

/** Normalizes a shape entry: numeric strings (as in the runtime's GraphInfo) become numbers. */
function dimOf(d: number | string): number | string {
  if (typeof d === 'number') return d;
  return /^\d+$/.test(d) ? Number(d) : d;
}

function normalizeIO(io: { inputs: ReadonlyArray<TensorIO>; outputs: ReadonlyArray<TensorIO> }): GraphIO {
  const norm = (t: TensorIO): TensorIO => ({ ...t, ...(t.shape ? { shape: t.shape.map(dimOf) } : {}) });
  return { inputs: io.inputs.map(norm), outputs: io.outputs.map(norm) };
}

/** `[batch_size, 16]` style. */
export function formatShape(shape: ReadonlyArray<number | string | null> | undefined): string {
  if (!shape) return '[?]';
  return `[${shape.map((d) => (d === null ? '*' : String(d))).join(', ')}]`;
}

/** A fixed dimension of a tensor, or undefined when symbolic or unknown. */
export function fixedDim(t: TensorIO | undefined, axis: number): number | undefined {
  const d = t?.shape?.[axis];
  if (d === undefined) return undefined;
  const v = dimOf(d);
  return typeof v === 'number' && v >= 0 ? v : undefined;
}

/**
 * Checks names (all of `expected.inputs` and `expected.outputs` present; no graph input left
 * unfed unless `strictInputs: false`), element types and fixed dimensions. Returns the graph's
 * description. Throws `bundle_invalid` with one line naming `file`.
 */
export async function checkGraphIO(src: GraphSource, expected: ExpectedIO, file: string): Promise<GraphIO> {
  let io: GraphIO;
  if (typeof src === 'string') {
    const session = await openGraph(src);
    try {
      io = describeSession(session);
    } finally {
      await session.release().catch(() => undefined);
    }
  } else if (isSession(src)) {
    io = describeSession(src);
  } else {
    io = normalizeIO(src);
  }
  checkIO(io, expected, file);
  return io;
}

/** The synchronous part of checkGraphIO, for a graph already described. */
export function checkIO(io: GraphIO, expected: ExpectedIO, file: string): void {
  const haveIn = io.inputs.map((t) => t.name);
  const haveOut = io.outputs.map((t) => t.name);
  for (const n of expected.inputs) {
    if (!haveIn.includes(n)) fail(file, `expected input "${n}", the graph has inputs [${haveIn.join(', ')}]`);
  }
  for (const n of expected.outputs) {
    if (!haveOut.includes(n)) fail(file, `expected output "${n}", the graph has outputs [${haveOut.join(', ')}]`);
  }
  if (expected.strictInputs !== false) {
    const fed = new Set([...expected.inputs, ...(expected.optionalInputs ?? [])]);
    const unfed = haveIn.filter((n) => !fed.has(n));
    if (unfed.length) {
      fail(file, `the graph needs input${unfed.length > 1 ? 's' : ''} [${unfed.join(', ')}] that would not be fed (expected inputs [${[...fed].join(', ')}])`);
    }
  }
  const find = (name: string) => io.inputs.find((t) => t.name === name) ?? io.outputs.find((t) => t.name === name);
  const kind = (name: string) => (io.inputs.some((t) => t.name === name) ? 'input' : 'output');
  for (const [name, allowed] of Object.entries(expected.types ?? {})) {
    const t = find(name);
    if (!t?.type) continue;
    const ok = typeof allowed === 'string' ? [allowed] : allowed;
    if (!ok.includes(t.type)) fail(file, `${kind(name)} "${name}" is ${t.type}, expected ${ok.join(' or ')}`);
  }
  for (const [name, want] of Object.entries(expected.dims ?? {})) {
    const t = find(name);
    if (!t?.shape) continue;
    const have = t.shape.map(dimOf);
    const bad =
      have.length !== want.length ||
      want.some((w, i) => w !== null && typeof have[i] === 'number' && have[i] !== w);
    if (bad) fail(file, `${kind(name)} "${name}" has shape ${formatShape(have)}, expected ${formatShape(want)}`);
  }
}

/**
 * Runs a session once on zeros to learn its output shapes (for graphs whose metadata leaves
 * dimensions symbolic). Symbolic input dimensions take `symbolic[name] ?? 1`.
 */
export async function probeOutputShapes(
  session: ort.InferenceSession,
  file: string,
  symbolic: Readonly<Record<string, number>> = {},
): Promise<Record<string, number[]>> {
  const io = describeSession(session);
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of io.inputs) {
    if (!t.shape || !t.type) fail(file, `cannot probe input "${t.name}": its type or shape is unknown`);
    const dims = t.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : (symbolic[String(d)] ?? 1)));
    const n = dims.reduce((a, b) => a * b, 1);
    let data: ort.Tensor.DataType;
    switch (t.type) {
      case 'float32':
        data = new Float32Array(n);
        break;
      case 'int64':
        data = new BigInt64Array(n);
        break;
      case 'int32':
        data = new Int32Array(n);
        break;
      case 'bool':
        data = new Uint8Array(n);
        break;
      case 'float16':
        data = new Uint16Array(n);
        break;
      default:
        fail(file, `cannot probe input "${t.name}" of type ${t.type}`);
    }
    feeds[t.name] = new ort.Tensor(t.type as 'float32', data as Float32Array, dims);
  }
  let out: ort.InferenceSession.ReturnType;
  try {
    out = await session.run(feeds);
  } catch (e) {
    fail(file, `failed on a dummy input (${firstLine(e)})`, e);
  }
  const shapes: Record<string, number[]> = {};
  for (const [name, v] of Object.entries(out)) {
    const dims = (v as ort.Tensor).dims;
    if (Array.isArray(dims)) shapes[name] = [...dims];
  }
  return shapes;
}
