/**
 * Rendering: a background drawn in JS (plain / gradient, plus texture for the `noisy` style) with the
 * shapes composited on top from an SVG, encoded as PNG by sharp. Pure function of
 * (scene, layout, size, style): the same inputs give the same bytes.
 */
import sharp from 'sharp';
import { Rng, hashString } from './rng.ts';
import { BACKGROUNDS, COLOR_RGB, sampleLayout, type Layout, type RGB } from './layout.ts';
import { sceneKey, type Scene, type SceneObject } from './scene.ts';

export const STYLES = ['default', 'outlined', 'noisy'] as const;
export type Style = (typeof STYLES)[number];

export interface RenderOptions {
  /** Image side in pixels (default 64). */
  size?: number;
  style?: Style;
  /** Layout to draw; when absent one is sampled from `seed` (default: a hash of the scene key). */
  layout?: Layout;
  seed?: number;
}

export const DEFAULT_SIZE = 64;

/** Renders the scene to PNG bytes (RGB, size x size). */
export async function renderScene(scene: Scene, opts: RenderOptions = {}): Promise<Buffer> {
  const size = opts.size ?? DEFAULT_SIZE;
  const style = opts.style ?? 'default';
  if (!Number.isInteger(size) || size < 8 || size > 4096) throw new RangeError(`size must be an integer in 8..4096, got ${size}`);
  if (!STYLES.includes(style)) throw new RangeError(`unknown style ${String(style)}`);
  const layout = opts.layout ?? sampleLayout(scene, new Rng(opts.seed ?? hashString(sceneKey(scene))));
  if (layout.objects.length !== scene.objects.length) throw new Error('layout and scene disagree on the object count');
  const background = backgroundPixels(layout, size, style);
  const svg = shapesSvg(scene, layout, size, style);
  return sharp(background, { raw: { width: size, height: size, channels: 3 } })
    .composite([{ input: Buffer.from(svg), left: 0, top: 0 }])
    .removeAlpha()
    .png({ compressionLevel: 6, adaptiveFiltering: false })
    .toBuffer();
}

function rgbOf(name: string): RGB {
  const c = BACKGROUNDS[name];
  if (!c) throw new Error(`unknown background ${name}`);
  return c;
}

/** Raw RGB background: linear gradient between two stops, textured for the `noisy` style. */
export function backgroundPixels(layout: Layout, size: number, style: Style): Buffer {
  const { background } = layout;
  const from = rgbOf(background.from);
  const to = rgbOf(background.to);
  const rad = (background.angle * Math.PI) / 180;
  const cos = Math.cos(rad);
  const sin = Math.sin(rad);
  const span = Math.abs(cos) + Math.abs(sin);
  const out = Buffer.alloc(size * size * 3);

  // Texture for `noisy`: two sinusoidal stripe patterns (in image-relative units, so they look the same
  // at every size) plus per-pixel luminance and chroma noise.
  const rng = new Rng(layout.noiseSeed);
  const waves = [0, 1].map(() => ({
    fx: rng.uniform(-6, 6),
    fy: rng.uniform(-6, 6),
    phase: rng.uniform(0, 2 * Math.PI),
    amp: rng.uniform(12, 26),
  }));
  const noisy = style === 'noisy';

  for (let y = 0; y < size; y++) {
    const v = (y + 0.5) / size;
    for (let x = 0; x < size; x++) {
      const u = (x + 0.5) / size;
      const t = ((u - 0.5) * cos + (v - 0.5) * sin) / span + 0.5;
      let shade = 0;
      let chroma = 0;
      if (noisy) {
        for (const w of waves) shade += w.amp * Math.sin(2 * Math.PI * (w.fx * u + w.fy * v) + w.phase);
        // Luminance noise: triangular, sd ~ 15 (sum of two bytes); chroma noise: one byte per channel, +-7.
        const bits = rng.u32();
        shade += ((bits & 0xff) + ((bits >>> 8) & 0xff) - 255) * 0.15;
        chroma = rng.u32();
      }
      const i = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) {
        const base = (from[c] as number) + ((to[c] as number) - (from[c] as number)) * t;
        const value = noisy ? base + shade + (((chroma >>> (8 * c)) & 0xff) - 127.5) * 0.055 : base;
        out[i + c] = Math.max(0, Math.min(255, Math.round(value)));
      }
    }
  }
  return out;
}

const f = (x: number) => x.toFixed(2);

function polygon(points: Array<[number, number]>): string {
  return `<polygon points="${points.map(([x, y]) => `${f(x)},${f(y)}`).join(' ')}"`;
}

/** Shape outline centered on the origin, fitting a box of half-side r. */
function shapeElement(o: SceneObject, r: number): string {
  switch (o.shape) {
    case 'circle':
      return `<circle cx="0" cy="0" r="${f(r)}"`;
    case 'square': {
      const h = r * 0.9;
      return `<rect x="${f(-h)}" y="${f(-h)}" width="${f(2 * h)}" height="${f(2 * h)}"`;
    }
    case 'diamond':
      return polygon([[0, -r], [0.8 * r, 0], [0, r], [-0.8 * r, 0]]);
    case 'triangle':
      return polygon([[0, -0.866 * r], [r, 0.866 * r], [-r, 0.866 * r]]);
    case 'hexagon':
      return polygon([0, 1, 2, 3, 4, 5].map((k) => [r * Math.cos((k * Math.PI) / 3), r * Math.sin((k * Math.PI) / 3)]));
    case 'star': {
      const pts: Array<[number, number]> = [];
      const shift = r * (1 - Math.cos(Math.PI / 5)) * 0.5; // center the bounding box vertically
      for (let k = 0; k < 10; k++) {
        const rr = k % 2 === 0 ? r : r * 0.42;
        const a = -Math.PI / 2 + (k * Math.PI) / 5;
        pts.push([rr * Math.cos(a), rr * Math.sin(a) + shift]);
      }
      return polygon(pts);
    }
  }
}

/** Transparent SVG holding only the shapes. */
export function shapesSvg(scene: Scene, layout: Layout, size: number, style: Style): string {
  const body = scene.objects.map((o, i) => {
    const p = layout.objects[i];
    if (!p) throw new Error(`layout has no placement for object ${i}`);
    const [r, g, b] = COLOR_RGB[o.color];
    const color = `rgb(${r},${g},${b})`;
    const half = (p.d * size) / 2;
    let paint: string;
    let radius = half;
    if (style === 'outlined') {
      const stroke = Math.max(1.5, 0.2 * half);
      radius = half - stroke / 2;
      paint = `fill="none" stroke="${color}" stroke-width="${f(stroke)}" stroke-linejoin="round"`;
    } else {
      paint = `fill="${color}"`;
    }
    const transform = `translate(${f(p.cx * size)} ${f(p.cy * size)}) rotate(${f(p.rotation)})`;
    return `<g transform="${transform}">${shapeElement(o, radius)} ${paint}/></g>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}">${body.join('')}</svg>`;
}
