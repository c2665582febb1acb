import { readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../src/inference/bundle.ts';
import { Runtime } from '../../src/inference/runtime.ts';
import { parseCaption } from '../../src/scenes/captions.ts';
import { renderScene } from '../../src/scenes/render.ts';
import type { Scene } from '../../src/scenes/scene.ts';

// The committed default model (issue 3): within the 25 MB limit, a valid bundle that Mira's
// runtime opens, and its captions are sentences of the scene grammar. Its quality figures come
// from `npm run eval` (BENCHMARKS.md), not from here.
const DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../models/default');
const LIMIT_BYTES = 25_000_000;

async function sizeOf(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? await sizeOf(p) : (await stat(p)).size;
  }
  return total;
}

describe('models/default', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await Runtime.open(DIR, { threads: 1, intraOpThreads: 1 });
  }, 60_000);
  afterAll(() => rt?.close());

  it('is at most 25 MB, graphs, tokenizer, weights and curves together', async () => {
    expect(await sizeOf(DIR)).toBeLessThanOrEqual(LIMIT_BYTES);
  });

  it('says how it was trained and validated', async () => {
    const about = (await readManifest(DIR)).about as { training?: Record<string, unknown>; validation?: Record<string, unknown> } | undefined;
    expect(about?.training, 'manifest about.training').toMatchObject({ seed: expect.any(Number) });
    expect(about?.validation, 'manifest about.validation').toBeTypeOf('object');
  });

  it('captions a generated scene with a sentence that parses back to a scene', async () => {
    const scene: Scene = { objects: [{ size: 'large', color: 'red', shape: 'circle' }, { size: 'small', color: 'blue', shape: 'square' }], relations: [{ subject: 0, relation: 'left', object: 1 }] };
    const png = await renderScene(scene, { size: 64 });
    const { text } = await rt.caption(new Uint8Array(png), { method: 'beam' });
    expect(parseCaption(text), text).not.toBeNull();
  });
});
