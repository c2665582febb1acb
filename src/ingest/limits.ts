/** The caps every ingested image passes through, from the environment (src/config.ts) once. */
import { type Env, loadEnv } from '../config.ts';
import type { ImageLimits } from '../inference/preprocess.ts';
import { type Allowlist, parseAllowlist } from './ip.ts';

export interface IngestLimits extends ImageLimits {
  /** Largest encoded image, file, upload or response body (bytes). */
  maxBytes: number;
  /** Largest width × height, refused from the header (sharp limitInputPixels as a second guard). */
  maxPixels: number;
  /** Header read + full decode + thumbnail of one image (ms). */
  decodeTimeoutMs: number;
  /** One URL: DNS, every redirect and the body (ms). */
  fetchTimeoutMs: number;
  maxRedirects: number;
  /** Lines of a manifest, and image files found in a directory. */
  maxManifestLines: number;
  /** Real or configured path of the ingest root; undefined turns path ingestion off. */
  root: string | undefined;
  allowlist: Allowlist;
}

export function ingestLimits(env: Env = loadEnv()): IngestLimits {
  return {
    maxBytes: env.MIRA_MAX_IMAGE_BYTES,
    maxPixels: env.MIRA_MAX_IMAGE_PIXELS,
    decodeTimeoutMs: env.MIRA_DECODE_TIMEOUT_MS,
    fetchTimeoutMs: env.MIRA_FETCH_TIMEOUT_MS,
    maxRedirects: env.MIRA_FETCH_MAX_REDIRECTS,
    maxManifestLines: env.MIRA_MAX_MANIFEST_LINES,
    root: env.MIRA_INGEST_ROOT,
    allowlist: parseAllowlist(env.MIRA_URL_ALLOWLIST),
  };
}

/**
 * `work`, or a rejection with `onTimeout()` once `ms` have passed. The work itself is not stopped
 * (sharp's own `timeout` does that for libvips); its late result or error is dropped.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  work.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
    timer.unref();
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
