import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job, JobProgress } from '../../sdk/src/index.ts';
import { deleteCollection, getCollection } from '../../src/db/queries/collections.ts';
import { getModel } from '../../src/db/queries/models.ts';
import type { FinetuneResult } from '../../src/finetune/run.ts';
import { renderScene, sampleScenes } from '../../src/scenes/index.ts';
import { useServer } from '../api/server.ts';
import { hasTorch, noTorchReason, REPO } from '../support/env.ts';
import { runMira } from '../support/mira-process.ts';
import { finetunableModel, sceneCollection, type SceneCollection } from './finetune-helpers.ts';

/**
 * Fine-tuning end to end with the real trainer (MIRA_PYTHON with torch) on a shifted domain where
 * the default model is weak: outlined shapes (it was trained on filled ones), seed 4242, which no
 * training, validation or test split uses. Service mode (BullMQ, a worker) through the SDK with
 * the collection's own captions set through PATCH /v1/images/{id}; embedded mode (in-process
 * jobs) through `mira finetune --pairs` in a child process, smaller. Both print their figures
 * (BENCHMARKS.md, "Fine-tuning").
 */
const N = 2000;
const STEPS = 100;
const SMALL = { n: 300, steps: 40, holdout: 0.2 };
const torchRequired = Boolean(process.env.CI);
const skip = !hasTorch && !torchRequired;
const why = hasTorch ? '' : ` (${torchRequired ? 'fails' : 'skipped'}: ${noTorchReason})`;

const server = useServer({ MIRA_PYTHON: process.env.MIRA_PYTHON ?? '/usr/bin/python3', MIRA_RATE_LIMIT_PER_MIN: '100000', MIRA_CAPTION_ON_INGEST: 'false' });

type Result = FinetuneResult & { reextract: { jobId: string } };

describe(`fine-tuning the default model on outlined scenes (${server.mode} mode, through the SDK)`, () => {
  let base: Awaited<ReturnType<typeof finetunableModel>>;
  let scenes: SceneCollection;
  beforeAll(async () => {
    if (skip) return;
    base = await finetunableModel(server().ctx);
    scenes = await sceneCollection(server().ctx, base.model, { seed: 4242, n: N, style: 'outlined' });
    // The captions a person would type, set through the metadata API.
    const entries = [...scenes.scenes];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let e = entries.pop(); e; e = entries.pop()) {
          const [id, r] = e;
          const res = await server().admin.api.PATCH('/v1/images/{id}', { params: { path: { id } }, body: { metadata: { caption: r.captions[0]! } } });
          if (!res.data) throw new Error(`PATCH ${id}: ${res.response.status}`);
        }
      }),
    );
  }, 900_000);
  afterAll(async () => {
    if (scenes) await deleteCollection(server().db, scenes.collection.id);
    await base?.cleanup();
  });

  it.skipIf(skip)(`improves held-out R@1, registers the new version and re-extracts the collection with it${why}`, async () => {
    if (!hasTorch) throw new Error(noTorchReason);
    const { admin, db, ctx } = server();
    const t0 = performance.now();
    const queued = await admin.finetune({ collection: scenes.collection.id, steps: STEPS, holdout: 0.1, reextract: true });
    const seen: JobProgress[] = [];
    const job = await admin.waitForJob(queued.id, { timeoutMs: 1_500_000, onProgress: (p) => seen.push(p) });
    const seconds = (performance.now() - t0) / 1000;
    expect(job.state, JSON.stringify(job)).toBe('completed');
    const r = job.result as Result;
    report('service', job, r, seconds);

    expect(r.after.t2i_itc_r1, JSON.stringify(r)).toBeGreaterThan(r.before.t2i_itc_r1);
    expect(r).toMatchObject({ registered: true, pairs: N, steps: STEPS, holdoutPairs: N / 10, from: base.model.id, modelId: `${base.model.name}@2` });
    // Progress was streamed into the job record as the trainer went.
    expect(seen.some((p) => p.done > 0 && p.done < STEPS && typeof p.loss === 'number'), JSON.stringify(seen)).toBe(true);
    expect(seen.some((p) => p.beforeItcR1 === r.before.t2i_itc_r1)).toBe(true);
    const model = await getModel(db, r.modelId!);
    expect(model?.path).toBe(join(ctx.dataDir, 'models', job.id));

    const reextract = await admin.waitForJob(r.reextract.jobId, { timeoutMs: 900_000 });
    expect(reextract.state, JSON.stringify(reextract)).toBe('completed');
    expect((await getCollection(db, { id: scenes.collection.id }))!.embedder).toBe(r.modelId);
    const found = await admin.api.POST('/v1/search', { body: { collectionId: scenes.collection.id, text: [...scenes.scenes.values()][0]!.captions[0]!, k: 3 } });
    expect(found.data?.model, JSON.stringify(found.data)).toBe(r.modelId);
  }, 1_800_000);
});

describe('fine-tuning in embedded mode through `mira finetune --pairs` (in-process jobs, smaller)', () => {
  let dir: string;
  beforeAll(async () => {
    if (skip) return;
    dir = await mkdtemp(join(tmpdir(), 'mira-finetune-cli-'));
    await mkdir(join(dir, 'images'));
    const lines: string[] = [];
    for (const [i, r] of sampleScenes(4245, SMALL.n).entries()) {
      const file = `images/${String(i).padStart(4, '0')}.png`;
      await writeFile(join(dir, file), await renderScene(r.scene, { size: 64, layout: r.layout, style: 'outlined' }));
      lines.push(JSON.stringify({ image: file, caption: r.captions[0] }));
    }
    await writeFile(join(dir, 'pairs.jsonl'), lines.join('\n') + '\n');
  }, 300_000);
  afterAll(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

  it.skipIf(skip)(`fine-tunes on a JSONL of file pairs, waits with the job and registers the improved version${why}`, async () => {
    if (!hasTorch) throw new Error(noTorchReason);
    const env = { MIRA_DATA_DIR: join(dir, 'data'), MIRA_MODEL_DIR: resolve(REPO, 'models/default'), MIRA_CAPTION_ON_INGEST: 'false', MIRA_PYTHON: process.env.MIRA_PYTHON ?? '/usr/bin/python3' };
    const ingest = await runMira(['ingest', join(dir, 'images'), '--collection', 'outlined', '--json'], env, 600_000);
    expect(ingest.code, ingest.stderr).toBe(0);
    const t0 = performance.now();
    const args = ['finetune', '--collection', 'outlined', '--pairs', join(dir, 'pairs.jsonl'), '--steps', String(SMALL.steps), '--holdout', String(SMALL.holdout), '--json'];
    const run = await runMira(args, env, 1_200_000);
    const seconds = (performance.now() - t0) / 1000;
    expect(run.code, run.stderr.slice(-3000)).toBe(0);
    const job = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Job;
    expect(job.state, run.stdout).toBe('completed');
    const r = job.result as Result;
    report('embedded', job, r, seconds);
    expect(r.after.t2i_itc_r1, JSON.stringify(r)).toBeGreaterThan(r.before.t2i_itc_r1);
    // the fine-tuned model is the default model's name at the next version
    const { name, version } = JSON.parse(await readFile(resolve(REPO, 'models/default/manifest.json'), 'utf8')) as { name: string; version: string };
    expect(r).toMatchObject({ registered: true, pairs: SMALL.n, steps: SMALL.steps, modelId: `${name}@${Number(version) + 1}` });
    expect(await readdir(join(dir, 'data', 'models', job.id))).toContain('manifest.json');
  }, 1_500_000);
});

/** One line of figures per run, for BENCHMARKS.md. */
function report(mode: string, job: Job, r: Result, seconds: number) {
  const figures = {
    mode, pairs: r.pairs, trainPairs: r.trainPairs, holdoutPairs: r.holdoutPairs, steps: r.steps,
    before: { itcR1: r.before.t2i_itc_r1, rerankR1: r.before.t2i_rerank_r1 }, after: { itcR1: r.after.t2i_itc_r1, rerankR1: r.after.t2i_rerank_r1 },
    trainerSeconds: r.trainerSeconds, jobSeconds: r.seconds, wallSeconds: Math.round(seconds), registered: r.registered, job: job.id,
  };
  console.log(`finetune figures: ${JSON.stringify(figures)}`);
}
