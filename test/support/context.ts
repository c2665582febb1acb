import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadEnv } from '../../src/config.ts';
import { createContext, processorDeps, type AppContext } from '../../src/context.ts';
import { startBullWorkers, type WorkerHandle } from '../../src/jobs/bull.ts';
import { IMPLEMENTED_KINDS, processors } from '../../src/jobs/processors/index.ts';
import { processorTable } from '../../src/jobs/registry.ts';
import { createLogger, type Logger } from '../../src/log.ts';
import { TINY_BLIP } from '../inference/helpers.ts';
import { privateDatabase } from './private-services.ts';

export type Mode = 'embedded' | 'service';

/** The modes this machine can run: service needs DATABASE_URL and REDIS_URL. */
export const modes: Mode[] = process.env.DATABASE_URL && process.env.REDIS_URL ? ['embedded', 'service'] : ['embedded'];
if (modes.length === 1) console.warn('service-mode pipeline tests skipped: DATABASE_URL and REDIS_URL are not both set');

export interface TestContext {
  ctx: AppContext;
  stop(): Promise<void>;
}

/**
 * A real context on a private data folder: embedded (PGlite, in-process jobs) or service
 * (Postgres, BullMQ on Redis with a private prefix, and a worker in this process).
 */
export async function testContext(mode: Mode, overrides: Record<string, string> = {}, opts: { log?: Logger } = {}): Promise<TestContext> {
  const dataDir = await mkdtemp(join(tmpdir(), `mira-${mode}-`));
  const base: Record<string, string | undefined> = {
    MIRA_DATA_DIR: dataDir,
    MIRA_MODEL_DIR: TINY_BLIP,
    MIRA_INFERENCE_THREADS: '1',
    MIRA_QUEUE_PREFIX: `mira-test-${randomUUID().slice(0, 8)}`,
    MIRA_PYTHON: process.env.MIRA_PYTHON,
    ...(mode === 'service' ? { DATABASE_URL: process.env.DATABASE_URL, REDIS_URL: process.env.REDIS_URL } : {}),
    ...overrides,
  };
  const env = loadEnv(Object.fromEntries(Object.entries(base).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv);
  const log = opts.log ?? createLogger('test', 'warn');
  const ctx = await createContext({ role: 'api', env, log });
  let workers: WorkerHandle | undefined;
  if (mode === 'service') {
    workers = startBullWorkers(processorDeps(ctx), processorTable(processors, IMPLEMENTED_KINDS), {
      redisUrl: env.REDIS_URL!,
      prefix: env.MIRA_QUEUE_PREFIX,
      log,
    });
  }
  return {
    ctx,
    async stop() {
      await workers?.close(5000);
      await ctx.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls until `check` returns a value other than undefined, or fails after `ms`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, ms = 15_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export const uniqueName = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/**
 * Environment for Mira child processes (workers, API servers) in crash tests: the real Postgres
 * and Redis of this machine, a private database (dropped by `dropDatabase`), data folder, queue
 * prefix and the tiny bundle.
 */
export async function childProcessEnv(name: string, extra: Record<string, string> = {}): Promise<{ dataDir: string; env: Record<string, string>; dropDatabase(): Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), `mira-${name}-`));
  // A database of its own on the test server: these processes reconcile every pending image and
  // job record they can see, and other tests' (with blobs in other data folders) are not theirs.
  const db = extra.DATABASE_URL === undefined && process.env.DATABASE_URL ? await privateDatabase(process.env.DATABASE_URL) : undefined;
  const env: Record<string, string> = {
    DATABASE_URL: db?.url ?? process.env.DATABASE_URL ?? '',
    REDIS_URL: process.env.REDIS_URL ?? '',
    MIRA_DATA_DIR: dataDir,
    MIRA_MODEL_DIR: TINY_BLIP,
    MIRA_QUEUE_PREFIX: `mira-${name}-${randomUUID().slice(0, 8)}`,
    MIRA_INFERENCE_THREADS: '1',
    MIRA_LOG_LEVEL: 'warn',
    ...extra,
  };
  return { dataDir, env, dropDatabase: async () => db?.drop() };
}
