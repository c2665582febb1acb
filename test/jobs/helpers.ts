import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppContext } from '../../src/context.ts';
import { getJob, type Job } from '../../src/db/queries/jobs.ts';
import { exportDir } from '../../src/extract/files.ts';
import { renderScene, sampleScenes } from '../../src/scenes/index.ts';
import { eventually } from '../support/context.ts';

/** A folder of `n` small scene PNGs, to be the ingest root of an extraction by path. */
export async function sceneFolder(n: number, seed = 3, into?: string): Promise<string> {
  const dir = into ?? (await mkdtemp(join(tmpdir(), 'mira-extract-files-')));
  for (const r of sampleScenes(seed, n)) await writeFile(join(dir, r.file), await renderScene(r.scene, { size: 48, layout: r.layout }));
  return dir;
}

/** Chunks an extraction has finished so far (each a durable .jsonl marker); 0 once it has joined them. */
export async function finishedChunks(dataDir: string, jobId: string): Promise<number> {
  const names = await readdir(join(exportDir(dataDir, jobId), 'chunks')).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith('.jsonl')).length;
}

const FINISHED = new Set(['completed', 'failed', 'cancelled', 'lost']);

/** The record once it has finished. */
export function finishedJob(ctx: AppContext, id: string, ms = 120_000): Promise<Job> {
  return eventually(`job ${id} finished`, async () => {
    const job = await getJob(ctx.db, id);
    return job && FINISHED.has(job.state) ? job : undefined;
  }, ms);
}

/** The record once `test` holds for it. */
export function jobWhen(ctx: AppContext, id: string, what: string, test: (j: Job) => boolean, ms = 120_000): Promise<Job> {
  return eventually(`job ${id}: ${what}`, async () => {
    const job = await getJob(ctx.db, id);
    return job && test(job) ? job : undefined;
  }, ms, 20);
}
