import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const DEFAULT_MODEL_DIR = resolve(ROOT, 'models/default');

const int = (min: number) => z.coerce.number().int().min(min);

/** Every environment variable Mira reads, with its default. Parsed once; a bad value stops startup. */
export const envSchema = z.object({
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
});

export type Env = z.infer<typeof envSchema>;

export function loadEnv(env: NodeJS.ProcessEnv = process.env): Env {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`environment variable ${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

export function runtimeOptions(env: Env) {
  return {
    threads: env.MIRA_INFERENCE_THREADS,
    intraOpThreads: env.MIRA_INTRA_OP_THREADS,
    maxBatch: env.MIRA_MAX_BATCH,
    maxWaitMs: env.MIRA_BATCH_WAIT_MS,
    executionProvider: env.MIRA_EXECUTION_PROVIDER,
    niceness: env.MIRA_INFERENCE_NICE,
  };
}
