/**
 * Typed inference errors. Every failure that reaches a caller of the inference layer carries a
 * stable `code`; the API maps codes to problem+json responses, so messages stay on one line and are
 * written for the user who sent the image or the operator who installed the bundle.
 */

export const inferenceErrorCodes = [
  /** The request carried no bytes. */
  'image_empty',
  /** The bytes are not an image, or not in a format the decoder supports. */
  'image_unsupported',
  /** A known format, but truncated or undecodable. */
  'image_corrupt',
  /** More pixels than allowed (refused from the header, before decoding). */
  'image_too_large',
  /** More bytes than allowed (refused before looking at them). */
  'image_too_many_bytes',
  /** A model bundle that does not follow the contract (models/README.md). */
  'bundle_invalid',
  /** onnxruntime failed while running a graph. */
  'inference_failed',
  /** The worker running a graph died. */
  'worker_crashed',
  /** The work did not finish in time. */
  'timeout',
] as const;

export type InferenceErrorCode = (typeof inferenceErrorCodes)[number];

/** Collapse whitespace so that a message (or a wrapped library message) stays on one line. */
function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

export class InferenceError extends Error {
  override readonly name = 'InferenceError';
  readonly code: InferenceErrorCode;

  constructor(code: InferenceErrorCode, message: string, options?: { cause?: unknown }) {
    super(oneLine(message), options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }

  toJSON(): { code: InferenceErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/**
 * True for an InferenceError (optionally with the given code). Also accepts the plain
 * `{name: 'InferenceError', code, message}` shape an error takes after crossing a worker boundary.
 */
export function isInferenceError(e: unknown, code?: InferenceErrorCode): e is InferenceError {
  if (e instanceof InferenceError) return code === undefined || e.code === code;
  if (typeof e !== 'object' || e === null) return false;
  const o = e as { name?: unknown; code?: unknown; message?: unknown };
  return (
    o.name === 'InferenceError' &&
    typeof o.message === 'string' &&
    (inferenceErrorCodes as readonly unknown[]).includes(o.code) &&
    (code === undefined || o.code === code)
  );
}
