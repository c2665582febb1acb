/**
 * generateScenes: samples records, renders them in parallel (bounded concurrency) and writes
 *   DIR/000000.png ...           one PNG per record (size x size, RGB)
 *   DIR/captions.jsonl           {"file","captions","scene","key","group","contrast","layout"} per line
 *   DIR/dataset.json             {seed, n, size, style, counts, vocabulary, ...}
 * The two manifests are written last (atomically), so their presence marks a complete dataset.
 * Output bytes depend only on (seed, n, size, style, contrastFraction).
 *
 * Splits come from different seeds: 1 = train, 2 = validation, 3 = test, 1000+ = demo / ad-hoc sets.
 * Styles share layouts for a seed, so `--style outlined --seed 3` is the shifted-domain copy of the
 * default test set (same scenes and captions, different rendering).
 */
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { captionVocabulary } from './captions.ts';
import { DEFAULT_SIZE, STYLES, renderScene, type Style } from './render.ts';
import { DEFAULT_CONTRAST_FRACTION, sampleScenes, type SceneRecord } from './sample.ts';

export const SPLIT_SEEDS = { train: 1, validation: 2, test: 3, demo: 1000 } as const;
export const GENERATOR = 'mira-scenes/1';

export interface GenerateOptions {
  seed: number;
  n: number;
  outDir: string;
  size?: number;
  style?: Style;
  contrastFraction?: number;
  /** Images rendered at once (default 8). */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface DatasetInfo {
  generator: string;
  seed: number;
  n: number;
  size: number;
  style: Style;
  contrastFraction: number;
  counts: {
    objects: { 1: number; 2: number; 3: number };
    /** Contrast groups with at least two members. */
    contrastGroups: number;
    /** Records that belong to such a group. */
    contrastScenes: number;
    uniqueKeys: number;
    captions: number;
  };
  vocabulary: string[];
}

export interface GenerateSummary extends DatasetInfo {
  outDir: string;
  elapsedMs: number;
}

export function datasetInfo(records: SceneRecord[], opts: Required<Pick<GenerateOptions, 'seed' | 'n' | 'size' | 'style' | 'contrastFraction'>>): DatasetInfo {
  const objects = { 1: 0, 2: 0, 3: 0 };
  const groupSizes = new Map<number, number>();
  for (const r of records) {
    objects[r.scene.objects.length as 1 | 2 | 3]++;
    groupSizes.set(r.group, (groupSizes.get(r.group) ?? 0) + 1);
  }
  const multi = [...groupSizes.values()].filter((s) => s >= 2);
  return {
    generator: GENERATOR,
    seed: opts.seed,
    n: opts.n,
    size: opts.size,
    style: opts.style,
    contrastFraction: opts.contrastFraction,
    counts: {
      objects,
      contrastGroups: multi.length,
      contrastScenes: multi.reduce((s, x) => s + x, 0),
      uniqueKeys: new Set(records.map((r) => r.key)).size,
      captions: records.reduce((s, r) => s + r.captions.length, 0),
    },
    vocabulary: captionVocabulary(),
  };
}

export async function generateScenes(opts: GenerateOptions): Promise<GenerateSummary> {
  const started = performance.now();
  const size = opts.size ?? DEFAULT_SIZE;
  const style = opts.style ?? 'default';
  const contrastFraction = opts.contrastFraction ?? DEFAULT_CONTRAST_FRACTION;
  const concurrency = opts.concurrency ?? 8;
  if (!Number.isInteger(size) || size < 8 || size > 4096) throw new RangeError(`size must be an integer in 8..4096, got ${size}`);
  if (!STYLES.includes(style)) throw new RangeError(`style must be one of ${STYLES.join(', ')}, got ${String(style)}`);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);

  const records = sampleScenes(opts.seed, opts.n, { contrastFraction });
  await mkdir(opts.outDir, { recursive: true });
  await removeStale(opts.outDir, new Set(records.map((r) => r.file)));

  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < records.length) {
      const r = records[next++] as SceneRecord;
      const png = await renderScene(r.scene, { size, style, layout: r.layout });
      await writeFile(join(opts.outDir, r.file), png);
      done++;
      opts.onProgress?.(done, records.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, records.length) }, worker));

  const lines = records.map((r) =>
    JSON.stringify({
      file: r.file,
      captions: r.captions,
      scene: r.scene,
      key: r.key,
      group: r.group,
      contrast: r.contrast,
      layout: r.layout,
    }),
  );
  const info = datasetInfo(records, { seed: opts.seed, n: opts.n, size, style, contrastFraction });
  await writeAtomic(join(opts.outDir, 'captions.jsonl'), lines.join('\n') + '\n');
  await writeAtomic(join(opts.outDir, 'dataset.json'), JSON.stringify(info, null, 2) + '\n');
  return { ...info, outDir: opts.outDir, elapsedMs: Math.round(performance.now() - started) };
}

async function writeAtomic(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

/** Removes manifests and numbered PNGs of an earlier run that the new dataset does not overwrite. */
async function removeStale(dir: string, keep: Set<string>): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name === 'captions.jsonl' || name === 'dataset.json' || (/^\d{6,}\.png$/.test(name) && !keep.has(name))) {
      await rm(join(dir, name), { force: true });
    }
  }
}
