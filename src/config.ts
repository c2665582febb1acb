import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { invalidAllowlistEntry } from './ingest/ip.ts';

export const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const DEFAULT_MODEL_DIR = resolve(ROOT, 'models/default');

const int = (min: number) => z.coerce.number().int().min(min);

/** Every environment variable Mira reads, with its default. Parsed once; a bad value stops startup. */
const flag = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

export const envSchema = z.object({
  /** Postgres for service mode; unset, an embedded PGlite lives in MIRA_DATA_DIR. */
  DATABASE_URL: z.string().url().optional(),
  /** Redis for BullMQ (and rate limits); unset, jobs run in-process. */
  REDIS_URL: z.string().url().optional(),
  /** Blobs, token features, index files and the embedded database. */
  MIRA_DATA_DIR: z.string().min(1).optional(),
  /** ITM re-ranking reads each candidate's image tokens from the lmdb store, or recomputes them from the original (src/features/README.md). */
  MIRA_TOKEN_FEATURES: z.enum(['store', 'recompute']).default('store'),
  /** Redis key prefix of Mira's queues. */
  MIRA_QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default('mira'),
  /** How long a worker's claim on a job lasts without renewal: a killed worker's jobs run again after it. */
  MIRA_JOB_LOCK_MS: int(1000).default(30_000),
  /** Workers look for pending images without a live job this often (a job that failed by stalling, say). */
  MIRA_RECONCILE_MS: int(1000).default(60_000),
  /** Caption every image at ingest when its collection has a captioner. */
  MIRA_CAPTION_ON_INGEST: flag.default(true),
  /** How captions are decoded when a request names no method (ingest, search, extraction, /v1/captions); unset, the bundle's. */
  MIRA_CAPTION_METHOD: z.enum(['greedy', 'beam', 'beam-itm']).optional(),
  /** The bundle folder used when nothing else names one. */
  MIRA_MODEL_DIR: z.string().default(DEFAULT_MODEL_DIR),
  /** Inference worker threads (default: min(cores, 4)). */
  MIRA_INFERENCE_THREADS: int(1).optional(),
  /** onnxruntime intra-op threads per worker (default: cores / workers). */
  MIRA_INTRA_OP_THREADS: int(1).optional(),
  MIRA_MAX_BATCH: int(1).default(32),
  MIRA_BATCH_WAIT_MS: z.coerce.number().min(0).default(2),
  /** `cuda` uses onnxruntime's CUDA execution provider where it loads, and falls back to CPU with a warning. */
  MIRA_EXECUTION_PROVIDER: z.enum(['cpu', 'cuda']).default('cpu'),
  /** Nice value of inference threads, so the HTTP thread wins the CPU (Linux). */
  MIRA_INFERENCE_NICE: int(0).max(19).default(10),
  /** Python with PyTorch, for training, export and fine-tuning. Debian's has torch; pyenv's may not. */
  MIRA_PYTHON: z.string().default(existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'),
  // Ingestion limits (src/ingest/README.md)
  MIRA_MAX_IMAGE_BYTES: int(1).default(50 * 1024 * 1024),
  /** Width × height, refused from the header before any pixel is decoded. */
  MIRA_MAX_IMAGE_PIXELS: int(1).default(40_000_000),
  MIRA_DECODE_TIMEOUT_MS: int(1).default(10_000),
  /** The folder server-side paths and manifests must lie in; unset, path ingestion is refused. */
  MIRA_INGEST_ROOT: z.string().min(1).optional(),
  /** Comma-separated host names, addresses and CIDRs that URL ingestion may reach although not public. */
  MIRA_URL_ALLOWLIST: z
    .string()
    .default('')
    .refine((v) => invalidAllowlistEntry(v) === undefined, { error: (iss) => invalidAllowlistEntry(String(iss.input)) ?? 'invalid' }),
  /** The whole fetch of one URL: DNS, redirects and body. */
  MIRA_FETCH_TIMEOUT_MS: int(1).default(15_000),
  MIRA_FETCH_MAX_REDIRECTS: int(0).default(3),
  MIRA_MAX_MANIFEST_LINES: int(1).default(100_000),
  // HTTP API (src/api)
  /** `off` serves without API keys; refused unless embedded and bound to loopback. */
  MIRA_AUTH: z.enum(['on', 'off']).default('on'),
  /** Where `mira serve` listens. */
  MIRA_HOST: z.string().min(1).default('127.0.0.1'),
  MIRA_PORT: int(0).max(65535).default(8080),
  /** Requests per API key per minute. */
  MIRA_RATE_LIMIT_PER_MIN: int(1).default(600),
  /** Comma-separated origins allowed by CORS; unset, no CORS headers are sent. */
  MIRA_CORS_ORIGINS: z.string().optional(),
  /** Cap on a JSON request body; uploads are capped by MIRA_MAX_IMAGE_BYTES. */
  MIRA_MAX_JSON_BYTES: int(1).default(1024 * 1024),
});

export type Env = z.infer<typeof envSchema>;

export function loadEnv(env: NodeJS.ProcessEnv = process.env): Env {
  // An empty variable means the same as an unset one (`REDIS_URL= mira serve` runs without Redis).
  const set = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
  const parsed = envSchema.safeParse(set);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`environment variable ${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

/** Where blobs, features, indexes and the embedded database live. */
export function dataDirOf(env: Env): string {
  return resolve(env.MIRA_DATA_DIR ?? resolve(ROOT, 'data'));
}

export function runtimeOptions(env: Env) {
  return {
    threads: env.MIRA_INFERENCE_THREADS,
    intraOpThreads: env.MIRA_INTRA_OP_THREADS,
    maxBatch: env.MIRA_MAX_BATCH,
    maxWaitMs: env.MIRA_BATCH_WAIT_MS,
    executionProvider: env.MIRA_EXECUTION_PROVIDER,
    niceness: env.MIRA_INFERENCE_NICE,
    captionMethod: env.MIRA_CAPTION_METHOD,
  };
}
