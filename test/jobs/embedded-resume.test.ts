/**
 * Embedded mode (PGlite, jobs in this process): a process that stops mid-extraction leaves the
 * record queued, and the next start picks the job up at its first unfinished chunk.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadEnv } from '../../src/config.ts';
import { createContext, type AppContext } from '../../src/context.ts';
import { jobKinds } from '../../src/db/schema/jobs.ts';
import { getJob } from '../../src/db/queries/jobs.ts';
import { processors } from '../../src/jobs/processors/index.ts';
import { processorTable } from '../../src/jobs/registry.ts';
import { submitJob } from '../../src/jobs/submit.ts';
import { createLogger } from '../../src/log.ts';
import { TINY_BLIP } from '../inference/helpers.ts';
import { eventually } from '../support/context.ts';
import { finishedChunks, finishedJob, sceneFolder } from './helpers.ts';

const N = 120;
const CHUNK = 4;

describe('every job kind', () => {
  it('has exactly one processor, as the startup check requires', () => {
    const table = processorTable(processors);
    expect([...table.keys()].sort()).toEqual([...jobKinds].sort());
  });
});

describe('an embedded extraction stopped mid-job', () => {
  const cleanup: string[] = [];
  let ctx: AppContext | undefined;
  afterAll(async () => {
    await ctx?.close();
    for (const d of cleanup) await rm(d, { recursive: true, force: true });
  });

  it('is queued again at the next start and reuses the chunks it had finished', async () => {
    const root = await sceneFolder(N, 17);
    const dataDir = await mkdtemp(join(tmpdir(), 'mira-embedded-resume-'));
    cleanup.push(root, dataDir);
    const env = loadEnv({ MIRA_DATA_DIR: dataDir, MIRA_MODEL_DIR: TINY_BLIP, MIRA_INFERENCE_THREADS: '1', MIRA_INGEST_ROOT: root } as NodeJS.ProcessEnv);
    const open = () => createContext({ role: 'cli', env, log: createLogger('embedded-resume', 'error') });

    ctx = await open();
    const job = await submitJob(ctx, 'extract', { source: { kind: 'path', path: root }, modelId: ctx.defaultModel.id, chunkSize: CHUNK });
    await eventually('two chunks', async () => ((await finishedChunks(dataDir, job.id)) >= 2 ? true : undefined), 120_000, 10);
    await ctx.close(); // the process stops: the running try ends where it is
    ctx = undefined;
    const kept = await finishedChunks(dataDir, job.id);
    expect(kept).toBeLessThan(N / CHUNK);

    ctx = await open();
    const stopped = await getJob(ctx.db, job.id);
    expect(['queued', 'running', 'completed'], JSON.stringify(stopped)).toContain(stopped?.state);
    const done = await finishedJob(ctx, job.id);
    expect(done, JSON.stringify(done)).toMatchObject({ state: 'completed', attempts: 2, result: { rows: N, chunksReused: kept, computed: N - kept * CHUNK } });
  }, 300_000);
});
