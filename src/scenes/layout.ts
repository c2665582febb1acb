/**
 * Geometry and palette of a rendered scene: object colors, backgrounds, and the jittered layout.
 * Coordinates are fractions of the image side (0..1), so one layout renders at any --size.
 * Layout values are rounded to 4 decimals when sampled, so the layout written to captions.jsonl
 * re-renders to exactly the same image.
 */
import type { Rng } from './rng.ts';
import type { Color, Relation, Scene } from './scene.ts';

export type RGB = readonly [number, number, number];

/** Saturated, well separated colors that stay distinguishable at 32 px. */
export const COLOR_RGB: Readonly<Record<Color, RGB>> = {
  red: [220, 30, 35],
  green: [30, 165, 55],
  blue: [35, 75, 225],
  yellow: [245, 215, 30],
  purple: [145, 50, 185],
  orange: [245, 135, 20],
  white: [250, 250, 250],
  black: [20, 20, 20],
};

/** Background colors; none equals an object color, and per scene only those far from every object color are used. */
export const BACKGROUNDS: Readonly<Record<string, RGB>> = {
  'light-gray': [205, 205, 205],
  gray: [128, 128, 128],
  slate: [60, 70, 85],
  beige: [228, 214, 180],
  sky: [170, 200, 232],
  mint: [180, 226, 192],
  navy: [28, 36, 72],
  olive: [110, 110, 70],
};

/** Minimum RGB distance between a background (every gradient stop) and every object color in the scene. */
export const MIN_CONTRAST = 100;

export function colorDistance(a: RGB, b: RGB): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

export interface Background {
  kind: 'plain' | 'gradient';
  /** Names from BACKGROUNDS; `to` equals `from` for plain backgrounds. */
  from: string;
  to: string;
  /** Gradient direction in degrees (0 = left to right, 90 = top to bottom). */
  angle: number;
}

export interface Placement {
  /** Center, as fractions of the image side. */
  cx: number;
  cy: number;
  /** Bounding-box side, as a fraction of the image side. */
  d: number;
  /** Rotation in degrees (0 for circles). */
  rotation: number;
}

export interface Layout {
  background: Background;
  objects: Placement[];
  /** Seeds the texture of the `noisy` style; sampled for every record so styles share layouts. */
  noiseSeed: number;
}

/** Bounding-box sides; small and large ranges stay apart even after the fit-to-canvas shrink (>= ~0.83). */
export const SIZE_RANGE = { small: [0.17, 0.21], large: [0.29, 0.33] } as const;
const MARGIN = 0.02;
const MIN_FIT_SCALE = 0.85;

const DIRECTION: Readonly<Record<Relation, readonly [number, number]>> = {
  left: [-1, 0],
  right: [1, 0],
  above: [0, -1],
  below: [0, 1],
};

const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

/** Background names usable behind every color of the scene. */
export function backgroundsFor(scene: Scene): string[] {
  return Object.keys(BACKGROUNDS).filter((name) =>
    scene.objects.every((o) => colorDistance(BACKGROUNDS[name] as RGB, COLOR_RGB[o.color]) >= MIN_CONTRAST),
  );
}

export function sampleBackground(scene: Scene, rng: Rng): Background {
  const names = backgroundsFor(scene);
  if (names.length === 0) throw new Error('no background contrasts with every object color');
  const from = rng.pick(names);
  if (names.length > 1 && rng.chance(0.5)) {
    const to = rng.pick(names.filter((n) => n !== from));
    return { kind: 'gradient', from, to, angle: rng.int(8) * 45 };
  }
  return { kind: 'plain', from, to: from, angle: 0 };
}

/**
 * Samples a layout that satisfies the scene's relations: the anchor (object 1) sits at the origin,
 * each satellite is displaced along its relation's direction by (sum of half sides + gap), with a
 * perpendicular jitter of at most 30% of that distance (so the named relation dominates); boxes never
 * overlap; the group is shrunk (>= 0.85) if needed to fit and then placed at a random spot.
 */
export function sampleLayout(scene: Scene, rng: Rng): Layout {
  const background = sampleBackground(scene, rng);
  const n = scene.objects.length;
  const baseD = scene.objects.map((o) => rng.uniform(SIZE_RANGE[o.size][0], SIZE_RANGE[o.size][1]));
  const rotation = scene.objects.map((o) => (o.shape === 'circle' ? 0 : round4(rng.uniform(-10, 10))));
  const noiseSeed = rng.u32();

  for (let attempt = 0; attempt <= 30; attempt++) {
    // Deterministic fallback: no perpendicular jitter and a gap wide enough that no corners touch.
    const relaxed = attempt === 30;
    const d = baseD.slice();
    const x = new Array<number>(n).fill(0);
    const y = new Array<number>(n).fill(0);
    for (const r of scene.relations) {
      const [dx, dy] = DIRECTION[r.relation];
      const gap = relaxed ? 0.08 : rng.uniform(0.02, 0.1);
      const dist = ((d[r.subject] as number) + (d[r.object] as number)) / 2 + gap;
      const perp = relaxed ? 0 : rng.uniform(-0.3, 0.3) * dist;
      x[r.subject] = (x[r.object] as number) + dx * dist + dy * perp;
      y[r.subject] = (y[r.object] as number) + dy * dist + dx * perp;
    }
    if (overlaps(x, y, d)) continue;
    const minX = Math.min(...x.map((v, i) => v - (d[i] as number) / 2));
    const maxX = Math.max(...x.map((v, i) => v + (d[i] as number) / 2));
    const minY = Math.min(...y.map((v, i) => v - (d[i] as number) / 2));
    const maxY = Math.max(...y.map((v, i) => v + (d[i] as number) / 2));
    const room = 1 - 2 * MARGIN;
    const scale = Math.min(1, room / (maxX - minX), room / (maxY - minY));
    if (scale < MIN_FIT_SCALE && !relaxed) continue;
    const w = (maxX - minX) * scale;
    const h = (maxY - minY) * scale;
    const ox = MARGIN + rng.uniform(0, room - w) - minX * scale;
    const oy = MARGIN + rng.uniform(0, room - h) - minY * scale;
    return {
      background,
      noiseSeed,
      objects: scene.objects.map((_, i) => ({
        cx: round4(ox + (x[i] as number) * scale),
        cy: round4(oy + (y[i] as number) * scale),
        d: round4((d[i] as number) * scale),
        rotation: rotation[i] as number,
      })),
    };
  }
  throw new Error('unreachable: relaxed layout always succeeds');
}

function overlaps(x: number[], y: number[], d: number[]): boolean {
  for (let i = 0; i < x.length; i++) {
    for (let j = i + 1; j < x.length; j++) {
      const half = ((d[i] as number) + (d[j] as number)) / 2 + 0.015;
      if (Math.abs((x[i] as number) - (x[j] as number)) < half && Math.abs((y[i] as number) - (y[j] as number)) < half) {
        return true;
      }
    }
  }
  return false;
}
