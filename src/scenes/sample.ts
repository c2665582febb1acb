/**
 * Pure sampling of dataset records (no rendering): scenes, contrast groups, captions and layouts.
 *
 * Contrast groups (hard negatives): with probability chosen so that about `contrastFraction` of all
 * records (default 0.4) belong to one, the sampler emits a group of 2 or 3 records instead of a single
 * one. The first member is a random 2- or 3-object scene; every further member applies exactly one swap
 * (colors of two objects, sizes of two objects, or a relation flipped / exchanged) to the previous member
 * and differs from every earlier member of the group. A word-bag matcher cannot tell color or size swaps
 * apart. Every record has a `group` id (singletons get their own); members of a group also have
 * `contrast: {of, swap}` naming the previous member's index and the swap applied.
 *
 * The random stream is consumed in record order and never depends on `n`, so sampleScenes(s, 100) is a
 * prefix of sampleScenes(s, 1000) (file names aside, which are padded to the width of n - 1, min 6).
 */
import { Rng } from './rng.ts';
import { captionScene } from './captions.ts';
import { sampleLayout, type Layout } from './layout.ts';
import { oneSwapNeighbours, sampleScene, sceneKey, type Scene, type SwapKind } from './scene.ts';

export interface SceneRecord {
  index: number;
  file: string;
  captions: string[];
  scene: Scene;
  key: string;
  group: number;
  contrast: { of: number; swap: SwapKind } | null;
  layout: Layout;
}

export interface SampleOptions {
  /** Expected fraction of records that belong to a contrast group (0..1, default 0.4). */
  contrastFraction?: number;
}

export const DEFAULT_CONTRAST_FRACTION = 0.4;
/** Mean contrast-group length: groups have 2 or 3 members with equal probability. */
const MEAN_GROUP_LENGTH = 2.5;

export function fileName(index: number, n: number): string {
  return `${String(index).padStart(Math.max(6, String(Math.max(0, n - 1)).length), '0')}.png`;
}

export function sampleScenes(seed: number, n: number, opts: SampleOptions = {}): SceneRecord[] {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`n must be a positive integer, got ${n}`);
  const frac = opts.contrastFraction ?? DEFAULT_CONTRAST_FRACTION;
  if (!(frac >= 0 && frac <= 1)) throw new RangeError(`contrastFraction must be in 0..1, got ${frac}`);
  // P(start a group) such that E[records in groups] / E[records] = frac.
  const pGroup = frac / (MEAN_GROUP_LENGTH * (1 - frac) + frac);

  const rng = new Rng(seed);
  const records: SceneRecord[] = [];
  let group = 0;
  const emit = (scene: Scene, contrast: SceneRecord['contrast']) => {
    if (records.length >= n) return;
    const index = records.length;
    records.push({
      index,
      file: fileName(index, n),
      captions: captionScene(scene, rng),
      scene,
      key: sceneKey(scene),
      group,
      contrast,
      layout: sampleLayout(scene, rng),
    });
  };

  while (records.length < n) {
    if (frac > 0 && rng.chance(pGroup)) {
      const length = 2 + rng.int(2);
      let prev = sampleScene(rng, rng.chance(0.5) ? 2 : 3);
      const keys = new Set([sceneKey(prev)]);
      emit(prev, null);
      for (let m = 1; m < length; m++) {
        const options = oneSwapNeighbours(prev).filter((s) => !keys.has(sceneKey(s.scene)));
        if (options.length === 0) break;
        // Pick the swap kind first so kinds are balanced regardless of how many variants each has.
        const kinds = [...new Set(options.map((o) => o.kind))];
        const kind = rng.pick(kinds);
        const next = rng.pick(options.filter((o) => o.kind === kind));
        emit(next.scene, { of: records.length - 1, swap: next.kind });
        keys.add(sceneKey(next.scene));
        prev = next.scene;
      }
    } else {
      emit(sampleScene(rng), null);
    }
    group++;
  }
  return records;
}
