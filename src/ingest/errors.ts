/**
 * Ingestion errors and the one mapping from any error to {code, HTTP status, message, retryable}, so
 * the API (problem+json) and the job processor (retry or fail for good) agree. Image problems stay
 * InferenceErrors (src/inference/errors.ts); this module adds the sources: URLs, paths, manifests.
 */
import { type InferenceErrorCode, isInferenceError } from '../inference/errors.ts';

export const ingestErrorCodes = [
  /** Not a URL, or one with credentials in it. */
  'url_invalid',
  /** A scheme other than http or https. */
  'url_scheme_refused',
  /** The host is, or resolves to, a loopback/private/link-local/reserved address (SSRF guard). */
  'address_refused',
  /** The connection failed or broke off (DNS failure, reset, early close). */
  'fetch_failed',
  /** The remote answered with a status other than 2xx. */
  'fetch_status',
  /** The whole fetch (DNS, redirects, body) took longer than allowed. */
  'fetch_timeout',
  'too_many_redirects',
  /** The file, upload or response body is larger than the byte cap. */
  'too_many_bytes',
  /** Path ingestion is off: MIRA_INGEST_ROOT is not set. */
  'path_ingest_disabled',
  /** An empty path or one with a NUL byte. */
  'path_invalid',
  /** `..`, an absolute path elsewhere, a symlink out, a sibling-prefix trick. */
  'path_outside_root',
  'path_not_found',
  /** A directory, device, FIFO or socket where a regular file is needed. */
  'path_not_file',
  /** A directory holding more image files than a manifest may have lines. */
  'directory_too_large',
  /** A manifest line that is not JSON or not `{"path"|"url", "metadata"?}`; the message names the line. */
  'manifest_invalid',
  'manifest_too_long',
  /** Decoding did not finish within the decode-time cap. */
  'decode_timeout',
] as const;

export type IngestErrorCode = (typeof ingestErrorCodes)[number];

export class IngestError extends Error {
  override readonly name = 'IngestError';
  readonly code: IngestErrorCode;
  /** 1-based manifest line, for manifest errors. */
  readonly line?: number;
  /** The remote's HTTP status, for fetch_status. */
  readonly upstreamStatus?: number;

  constructor(code: IngestErrorCode, message: string, options?: { cause?: unknown; line?: number; upstreamStatus?: number }) {
    super(message.replace(/\s+/g, ' ').trim(), options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.line !== undefined) this.line = options.line;
    if (options?.upstreamStatus !== undefined) this.upstreamStatus = options.upstreamStatus;
  }

  toJSON(): { code: IngestErrorCode; message: string; line?: number } {
    return { code: this.code, message: this.message, ...(this.line === undefined ? {} : { line: this.line }) };
  }
}

export function isIngestError(e: unknown, code?: IngestErrorCode): e is IngestError {
  return e instanceof IngestError && (code === undefined || e.code === code);
}

export interface ClassifiedError {
  code: IngestErrorCode | InferenceErrorCode | 'internal';
  /** HTTP status for the API's problem+json. */
  status: number;
  message: string;
  /** True when trying again later may succeed (transient fetch errors, crashed workers). */
  retryable: boolean;
}

const INGEST: Record<IngestErrorCode, { status: number; retryable: boolean }> = {
  url_invalid: { status: 400, retryable: false },
  url_scheme_refused: { status: 400, retryable: false },
  address_refused: { status: 403, retryable: false },
  fetch_failed: { status: 502, retryable: true },
  fetch_status: { status: 502, retryable: false }, // 5xx, 408 and 429 from the remote: retryable
  fetch_timeout: { status: 504, retryable: true },
  too_many_redirects: { status: 422, retryable: false },
  too_many_bytes: { status: 413, retryable: false },
  path_ingest_disabled: { status: 403, retryable: false },
  path_invalid: { status: 400, retryable: false },
  path_outside_root: { status: 403, retryable: false },
  path_not_found: { status: 422, retryable: false },
  path_not_file: { status: 422, retryable: false },
  directory_too_large: { status: 413, retryable: false },
  manifest_invalid: { status: 422, retryable: false },
  manifest_too_long: { status: 413, retryable: false },
  decode_timeout: { status: 422, retryable: false },
};

const INFERENCE: Record<InferenceErrorCode, { status: number; retryable: boolean }> = {
  image_empty: { status: 422, retryable: false },
  image_unsupported: { status: 415, retryable: false },
  image_corrupt: { status: 422, retryable: false },
  image_too_large: { status: 422, retryable: false },
  image_too_many_bytes: { status: 413, retryable: false },
  bundle_invalid: { status: 500, retryable: false },
  inference_failed: { status: 500, retryable: false },
  worker_crashed: { status: 503, retryable: true },
  timeout: { status: 503, retryable: true },
};

/**
 * Any thrown value -> the code, status, message and retry decision. Unknown errors are `internal`
 * (500, retryable: a database or disk hiccup is worth a bounded retry) and their message is not
 * passed on, so no stack or internal detail reaches a user.
 */
export function classifyError(e: unknown): ClassifiedError {
  if (e instanceof IngestError) {
    const m = INGEST[e.code];
    const upstream = e.upstreamStatus;
    const retryable = e.code === 'fetch_status' && upstream !== undefined ? upstream >= 500 || upstream === 408 || upstream === 429 : m.retryable;
    return { code: e.code, status: m.status, message: e.message, retryable };
  }
  if (isInferenceError(e)) {
    const m = INFERENCE[e.code];
    return { code: e.code, status: m.status, message: e.message, retryable: m.retryable };
  }
  return { code: 'internal', status: 500, message: 'Internal error.', retryable: true };
}
