import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AppContext } from '../../src/context.ts';
import { createCollection, type Collection } from '../../src/db/queries/collections.ts';
import { countImagesByStatus } from '../../src/db/queries/images.ts';
import type { Model } from '../../src/db/queries/models.ts';
import { ingestImage } from '../../src/ingest/pipeline.ts';
import { registerBundle } from '../../src/models/registry.ts';
import { renderScene, sampleScenes, type SceneRecord, type Style } from '../../src/scenes/index.ts';
import { bundleCopy } from '../inference/helpers.ts';
import { eventually, uniqueName } from '../support/context.ts';
import { REPO } from '../support/env.ts';

/**
 * A private copy of the default model (its ONNX graphs and its weights/*.safetensors) under a
 * name only this test uses, registered: fine-tuned versions of it cannot collide with anyone's.
 */
export async function finetunableModel(ctx: Pick<AppContext, 'db'>): Promise<{ model: Model; cleanup(): Promise<void> }> {
  const name = uniqueName('ft-blip');
  const copy = await bundleCopy((m) => Object.assign(m, { name, version: '1' }), resolve(REPO, 'models/default'));
  const { model } = await registerBundle(ctx.db, copy.dir);
  return { model, cleanup: copy.cleanup };
}

export interface SceneCollection {
  collection: Collection;
  /** Image id → the scene it shows. */
  scenes: Map<string, SceneRecord>;
}

/** A collection searched by `model`, holding `n` generated scenes (no captions yet), all ready. */
export async function sceneCollection(ctx: AppContext, model: Model, opts: { seed: number; n: number; style: Style }): Promise<SceneCollection> {
  const collection = await createCollection(ctx.db, { name: uniqueName('finetune'), embedder: model.id, reranker: model.id });
  const scenes = new Map<string, SceneRecord>();
  for (const [i, r] of sampleScenes(opts.seed, opts.n).entries()) {
    const bytes = await renderScene(r.scene, { size: 64, layout: r.layout, style: opts.style });
    const { imageId } = await ingestImage(ctx, collection, { kind: 'upload', bytes, filename: `scene-${i}.png` });
    scenes.set(imageId, r);
  }
  await eventually(`${opts.n} images ready`, async () => ((await countImagesByStatus(ctx.db, collection.id)).ready === scenes.size ? true : undefined), 600_000, 200);
  return { collection, scenes };
}

export type FakeMode = 'crash' | 'hang' | 'bad-bundle' | 'no-gain' | 'gain' | 'no-torch';

/**
 * A stand-in for MIRA_PYTHON that answers the preflight and `-m mira_blip.finetune` as the mode
 * file says: the edge the job talks to, replaced so each failure can be made on purpose. It
 * records its pid so tests can check that a stopped trainer is gone.
 */
export async function fakeTrainer(): Promise<{ python: string; setMode(m: FakeMode): Promise<void>; pid(): Promise<number>; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'mira-fake-python-'));
  const python = join(dir, 'python');
  await writeFile(python, `#!${process.execPath}\n${FAKE}`);
  await chmod(python, 0o755);
  return {
    python,
    setMode: (m) => writeFile(join(dir, 'mode'), m),
    pid: async () => Number(await readFile(join(dir, 'pid'), 'utf8')),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

const FAKE = String.raw`
const fs = require('node:fs');
const path = require('node:path');
const argv = process.argv.slice(2);
const mode = fs.readFileSync(path.join(__dirname, 'mode'), 'utf8').trim();
if (argv[0] === '-c') {
  if (mode === 'no-torch') {
    process.stderr.write("Traceback (most recent call last):\nModuleNotFoundError: No module named 'torch'\n");
    process.exit(1);
  }
  process.exit(0);
}
fs.writeFileSync(path.join(__dirname, 'pid'), String(process.pid));
const arg = (f) => argv[argv.indexOf(f) + 1];
const emit = (o) => console.log(JSON.stringify(o));
const pairs = fs.readFileSync(arg('--pairs'), 'utf8').trim().split('\n').length;
const steps = Number(arg('--steps'));
emit({ event: 'start', pairs, train_pairs: pairs - 2, holdout_pairs: 2, steps });
const score = (r1) => ({ t2i_itc_r1: r1, t2i_rerank_r1: r1, queries: 2, images: 2, k: 2 });
emit({ event: 'eval', when: 'before', ...score(0.5) });
if (mode === 'crash') {
  process.stderr.write('Traceback (most recent call last):\nRuntimeError: out of memory (fake trainer)\n');
  emit({ event: 'error', code: 1, message: 'RuntimeError: out of memory (fake trainer)' });
  process.exit(1);
}
if (mode === 'hang') {
  emit({ event: 'step', step: 1, total: steps, loss: 3.5, s_per_step: 1 });
  setInterval(() => {}, 1000);
  return;
}
const out = arg('--out');
const after = mode === 'no-gain' ? 0.5 : 1;
const report = { name: 'x', version: arg('--version'), pairs, images: pairs, trainPairs: pairs - 2, holdoutPairs: 2, steps, before: score(0.5), after: score(after), seconds: 0.1 };
if (mode === 'bad-bundle') {
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'manifest.json'), '{ not json');
} else {
  fs.cpSync(arg('--bundle'), out, { recursive: true });
  const m = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
  m.version = arg('--version');
  report.name = m.name;
  fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify(m));
}
emit({ event: 'eval', when: 'after', ...score(after) });
fs.writeFileSync(path.join(out, 'report.json'), JSON.stringify(report));
emit({ event: 'done', before: report.before, after: report.after });
`;
