/**
 * The demo's sample collection: generated captioned scenes (seed SPLIT_SEEDS.demo) cached in the
 * data folder, plus a JSONL manifest that `mira ingest` reads like any other, giving each image its
 * scene as metadata (for filters). A complete folder is reused; an incomplete one is regenerated.
 */
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GENERATOR, generateScenes, SPLIT_SEEDS, type DatasetInfo } from '../scenes/generate.ts';
import { DEFAULT_SIZE } from '../scenes/render.ts';
import type { Scene } from '../scenes/scene.ts';
import { progressBar } from './progress.ts';

export interface DemoScenes {
  dir: string;
  /** The manifest to ingest. */
  manifest: string;
  n: number;
  /** False when an earlier run had already made them. */
  generated: boolean;
}

const MANIFEST = 'manifest.jsonl';

export async function ensureDemoScenes(dataDir: string, n: number, opts: { progress: boolean }): Promise<DemoScenes> {
  const seed = SPLIT_SEEDS.demo;
  const dir = join(dataDir, 'demo', `scenes-seed${seed}-n${n}`);
  const manifest = join(dir, MANIFEST);
  if (existsSync(manifest) && (await isComplete(dir, seed, n))) return { dir, manifest, n, generated: false };
  const bar = progressBar('generating', n, { enabled: opts.progress });
  await generateScenes({ seed, n, outDir: dir, size: DEFAULT_SIZE, onProgress: (done) => bar.update(done) });
  bar.done();
  await writeManifest(dir, manifest);
  return { dir, manifest, n, generated: true };
}

/** dataset.json is written last by the generator: present and matching means every image is there. */
async function isComplete(dir: string, seed: number, n: number): Promise<boolean> {
  const info = await readFile(join(dir, 'dataset.json'), 'utf8').then((t) => JSON.parse(t) as Partial<DatasetInfo>, () => undefined);
  return info?.generator === GENERATOR && info.seed === seed && info.n === n && info.size === DEFAULT_SIZE && info.style === 'default';
}

/** captions.jsonl -> {"path", "metadata": {scene, objects, shapes, colors}} per image. */
async function writeManifest(dir: string, manifest: string): Promise<void> {
  const records = (await readFile(join(dir, 'captions.jsonl'), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { file: string; captions: string[]; scene: Scene });
  const lines = records.map(({ file, captions, scene }) => {
    const unique = <T>(xs: T[]) => [...new Set(xs)].sort();
    const metadata = {
      scene: captions[0],
      objects: scene.objects.length,
      shapes: unique(scene.objects.map((o) => o.shape)),
      colors: unique(scene.objects.map((o) => o.color)),
    };
    return JSON.stringify({ path: file, metadata });
  });
  await writeFile(`${manifest}.tmp`, lines.join('\n') + '\n');
  await rename(`${manifest}.tmp`, manifest);
}
