import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { InferenceError, isInferenceError, type InferenceErrorCode } from '../src/inference/errors.ts';
import type { PreprocessSpec } from '../src/inference/manifest.ts';
import { preprocessSpec } from '../src/inference/manifest.ts';
import { axisWeights, decodeImage, decodeRgb, resizeGeometry, toPixelValues, type ImageLimits } from '../src/inference/preprocess.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..');
const pilDir = join(here, 'fixtures', 'pil');
const sharedPreprocess = resolve(repoRoot, '../shared/reference/blip-parity/preprocess');
const hasShared = existsSync(join(sharedPreprocess, 'preprocess_expected.json'));

const limits: ImageLimits = { maxPixels: 40_000_000, maxBytes: 20_000_000 };
const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

interface FixtureImage {
  name: string;
  file: string;
  kind: string;
  source: string;
  alpha?: 'drop' | 'flatten';
  background?: [number, number, number];
  orientation?: number;
  displayed?: [number, number];
  refs: Record<string, string>;
}
interface FixtureIndex {
  mean: [number, number, number];
  std: [number, number, number];
  transforms: Record<string, { resize: PreprocessSpec['resize']; size: number; kernel: PreprocessSpec['kernel'] }>;
  images: FixtureImage[];
}

const index = JSON.parse(readFileSync(join(pilDir, 'index.json'), 'utf8')) as FixtureIndex;
const fixtureBytes = (img: FixtureImage) => readFileSync(join(pilDir, img.file));
const byName = (name: string) => {
  const f = index.images.find((i) => i.name === name);
  if (!f) throw new Error(`no fixture ${name}`);
  return f;
};

function specFor(t: string, img?: FixtureImage): PreprocessSpec {
  const tr = index.transforms[t]!;
  return preprocessSpec.parse({
    size: tr.size,
    resize: tr.resize,
    kernel: tr.kernel,
    mean: index.mean,
    std: index.std,
    alpha: img?.alpha === 'flatten' ? { mode: 'flatten', background: img.background } : { mode: 'drop' },
  });
}

/** Mean and max absolute difference, in units of a channel value (1 = 1/255), between our
 * normalized output and the normalized PIL reference bytes. */
function diffAgainstRef(ours: Float32Array, refHwc: Uint8Array, spec: PreprocessSpec): { mad: number; max: number } {
  const plane = spec.size * spec.size;
  let sum = 0;
  let max = 0;
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      const ref = (refHwc[i * 3 + c]! / 255 - spec.mean[c]!) / spec.std[c]!;
      const d = (Math.abs(ours[c * plane + i]! - ref) * spec.std[c]!) * 255;
      sum += d;
      if (d > max) max = d;
    }
  }
  return { mad: sum / (3 * plane), max };
}

async function expectCode(p: Promise<unknown>, code: InferenceErrorCode): Promise<InferenceError> {
  try {
    await p;
  } catch (e) {
    expect(isInferenceError(e), String(e)).toBe(true);
    const err = e as InferenceError;
    expect(err.code, err.message).toBe(code);
    expect(err.message).not.toMatch(/\n/);
    return err;
  }
  throw new Error(`expected ${code}, got success`);
}

/** CRC-32 for crafting PNG chunks. */
function crc32(buf: Uint8Array): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}
function pngChunk(type: string, data: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
/** A ~100-byte PNG that declares width × height (8-bit grey) and carries a few rows of data. */
function pngBomb(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8);
  const rows = Buffer.alloc((width + 1) * 2); // two rows of zeros
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(rows)),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

describe('PIL parity (fixtures from test/fixtures/pil/make_pil_fixtures.py)', () => {
  const rows: string[] = [];
  const cases = index.images.flatMap((img) => Object.keys(img.refs).map((t) => ({ img, t })));

  it.each(cases.map((c) => [`${c.img.name} ${c.t}`, c] as const))('%s', async (_label, { img, t }) => {
    const spec = specFor(t, img);
    const ours = await toPixelValues(fixtureBytes(img), spec, limits);
    expect(ours.length).toBe(3 * spec.size * spec.size);
    const ref = new Uint8Array(readFileSync(join(pilDir, img.refs[t]!)));
    const { mad, max } = diffAgainstRef(ours, ref, spec);
    rows.push(`${img.name.padEnd(22)} ${t.padEnd(15)} mean |Δ| ${mad.toFixed(4)}/255  max ${max.toFixed(2)}/255  (${img.source})`);
    // The CMYK JPEG's "source" reference is the RGB image before JPEG compression: the gap is JPEG's
    // loss, not ours, so it gets a looser bound. Everything else must stay within 1/255.
    const bound = img.name === 'cmyk_64x64_src' ? 2 : 1;
    expect(mad).toBeLessThanOrEqual(bound);
  });

  it('prints the per-fixture mean absolute differences', () => {
    // eslint-disable-next-line no-console
    console.log(`PIL parity, per fixture and transform (units of 1/255):\n${rows.join('\n')}`);
    expect(rows.length).toBe(cases.length);
  });
});

describe('BLIP reference transform (../shared/reference/blip-parity/preprocess)', () => {
  const skipReason = hasShared ? '' : ` [skipped: ${sharedPreprocess} is absent]`;
  const expected = hasShared
    ? (JSON.parse(readFileSync(join(sharedPreprocess, 'preprocess_expected.json'), 'utf8')) as {
        mean: [number, number, number];
        std: [number, number, number];
        pixel_values: Record<string, number[][][]>;
      })
    : { mean: CLIP_MEAN, std: CLIP_STD, pixel_values: {} as Record<string, number[][][]> };
  const names = hasShared ? Object.keys(expected.pixel_values) : ['photo', 'gray', 'alpha'];

  it.skipIf(!hasShared).each(names)(`%s.png matches BLIP Resize((32,32), BICUBIC) + Normalize${skipReason}`, async (name) => {
    const spec = preprocessSpec.parse({ size: 32, resize: 'squash', kernel: 'bicubic', mean: expected.mean, std: expected.std, alpha: { mode: 'drop' } });
    const ours = await toPixelValues(readFileSync(join(sharedPreprocess, `${name}.png`)), spec, limits);
    const ref = expected.pixel_values[name]!.flat(2);
    expect(ref.length).toBe(ours.length);
    let sum = 0;
    let max = 0;
    for (let i = 0; i < ref.length; i++) {
      const c = Math.floor(i / 1024);
      const d = Math.abs(ours[i]! - ref[i]!) * expected.std[c]! * 255;
      sum += d;
      max = Math.max(max, d);
    }
    // eslint-disable-next-line no-console
    console.log(`blip-parity preprocess ${name}: mean |Δ| ${(sum / ref.length).toFixed(4)}/255, max ${max.toFixed(4)}/255`);
    expect(sum / ref.length).toBeLessThanOrEqual(1);
  });
});
if (!hasShared) {
  // eslint-disable-next-line no-console
  console.warn(`preprocess.test.ts: BLIP reference checks skipped: ${sharedPreprocess} does not exist`);
}

describe('decoding', () => {
  it('applies the EXIF orientation (dimensions and pixels)', async () => {
    for (const name of ['exif6_80x48', 'exif5_80x48', 'exif3_80x48']) {
      const img = byName(name);
      const d = await decodeImage(fixtureBytes(img), limits);
      expect(d.orientation).toBe(img.orientation);
      expect([d.width, d.height]).toEqual(img.displayed);
      expect([d.storedWidth, d.storedHeight]).toEqual([80, 48]);
      const rgb = await decodeRgb(fixtureBytes(img), { mode: 'drop', background: [255, 255, 255] }, limits);
      expect([rgb.width, rgb.height]).toEqual(img.displayed);
    }
    // the same JPEG without honouring the tag would be far off the exif_transpose'd reference
    const img = byName('exif6_80x48');
    const spec = specFor('blip32', img);
    const raw = await sharp(fixtureBytes(img)).rotate(0).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    expect([raw.info.width, raw.info.height]).toEqual([80, 48]);
    const ours = await toPixelValues(fixtureBytes(img), spec, limits);
    expect(diffAgainstRef(ours, new Uint8Array(readFileSync(join(pilDir, img.refs.blip32!))), spec).mad).toBeLessThan(1e-3);
  });

  it('converts grey, palette, 16-bit and CMYK to 8-bit RGB', async () => {
    const drop: PreprocessSpec['alpha'] = { mode: 'drop', background: [255, 255, 255] };
    const gray = await decodeRgb(fixtureBytes(byName('gray_50x64')), drop, limits);
    expect(gray.data.length).toBe(50 * 64 * 3);
    for (let i = 0; i < gray.data.length; i += 3) {
      expect(gray.data[i + 1]).toBe(gray.data[i]);
      expect(gray.data[i + 2]).toBe(gray.data[i]);
    }
    for (const [name, space, depth] of [
      ['palette_64x48', 'srgb', 'uchar'],
      ['rgb16_66x50', 'rgb16', 'ushort'],
      ['gray16_40x50', 'grey16', 'ushort'],
      ['cmyk_64x64', 'cmyk', 'uchar'],
    ] as const) {
      const bytes = fixtureBytes(byName(name));
      const d = await decodeImage(bytes, limits);
      expect(d.space, name).toBe(space);
      expect(d.depth, name).toBe(depth);
      const rgb = await decodeRgb(bytes, drop, limits);
      expect(rgb.data.length, name).toBe(d.width * d.height * 3);
    }
    // 16-bit: the high byte of each sample (the PIL parity cases compare every pixel against v >> 8)
    // CMYK: PIL's formula on the stored bands; within JPEG's loss of the RGB it was made from
    const spec = specFor('blip64');
    const ours = await toPixelValues(fixtureBytes(byName('cmyk_64x64')), spec, limits);
    const src = diffAgainstRef(ours, new Uint8Array(readFileSync(join(pilDir, byName('cmyk_64x64_src').refs.blip64!))), spec);
    expect(src.mad).toBeLessThan(2);
  });

  it('alpha: drop keeps the stored colour, flatten composites over the background', async () => {
    const bytes = fixtureBytes(byName('rgba_70x40'));
    const stored = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
    expect(stored.info.channels).toBe(4);
    const drop = await decodeRgb(bytes, { mode: 'drop', background: [255, 255, 255] }, limits);
    const bg: [number, number, number] = [40, 160, 220];
    const flat = await decodeRgb(bytes, { mode: 'flatten', background: bg }, limits);
    let hidden = 0;
    for (let y = 0; y < 40; y++) {
      for (let x = 0; x < 70; x++) {
        const s = (y * 70 + x) * 4;
        const o = (y * 70 + x) * 3;
        const a = stored.data[s + 3]!;
        for (let c = 0; c < 3; c++) {
          const v = stored.data[s + c]!;
          expect(drop.data[o + c]).toBe(v);
          if (a === 0) expect(flat.data[o + c]).toBe(bg[c]);
          else if (a === 255) expect(flat.data[o + c]).toBe(v);
          else expect(Math.abs(flat.data[o + c]! - (v * a + bg[c]! * (255 - a)) / 255)).toBeLessThanOrEqual(0.51);
        }
        if (a === 0 && stored.data[s] !== bg[0]) hidden++;
      }
    }
    expect(hidden).toBeGreaterThan(100); // the transparent strip really hides other colours
  });

  it('uses the first frame of an animated GIF', async () => {
    const d = await decodeImage(fixtureBytes(byName('anim_40x30')), limits);
    expect(d.pages).toBe(2);
    expect([d.width, d.height]).toEqual([40, 30]);
  });

  it('an opaque image decodes the same with drop and flatten', async () => {
    const bytes = fixtureBytes(byName('photo_jpeg_120x88'));
    const a = await decodeRgb(bytes, { mode: 'drop', background: [0, 0, 0] }, limits);
    const b = await decodeRgb(bytes, { mode: 'flatten', background: [0, 0, 0] }, limits);
    expect(Buffer.compare(Buffer.from(a.data), Buffer.from(b.data))).toBe(0);
  });
});

describe('bad images give typed errors', () => {
  const spec = specFor('blip32');
  const jpeg = fixtureBytes(byName('photo_jpeg_120x88'));
  const png = fixtureBytes(byName('photo_land_160x90'));

  it('zero bytes: image_empty', async () => {
    await expectCode(toPixelValues(new Uint8Array(0), spec, limits), 'image_empty');
  });

  it('too many bytes: image_too_many_bytes', async () => {
    await expectCode(toPixelValues(jpeg, spec, { ...limits, maxBytes: 1000 }), 'image_too_many_bytes');
  });

  it('truncated JPEG and PNG: image_corrupt', async () => {
    for (const bytes of [jpeg.subarray(0, Math.floor(jpeg.length * 0.6)), jpeg.subarray(0, jpeg.length - 40), png.subarray(0, Math.floor(png.length / 2))]) {
      await expectCode(toPixelValues(bytes, spec, limits), 'image_corrupt');
    }
    // cut inside the header
    await expectCode(toPixelValues(png.subarray(0, 30), spec, limits), 'image_corrupt');
  });

  it('text renamed .jpg: image_unsupported', async () => {
    const text = Buffer.from('This is not a JPEG, just a text file someone renamed to photo.jpg.\n'.repeat(4));
    await expectCode(toPixelValues(text, spec, limits), 'image_unsupported');
  });

  it('SVG is refused: image_unsupported', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    await expectCode(toPixelValues(svg, spec, limits), 'image_unsupported');
  });

  it('pixel bomb (a 100-byte PNG declaring 30000×30000): image_too_large, before decoding', async () => {
    const bomb = pngBomb(30000, 30000);
    expect(bomb.length).toBeLessThan(200);
    const t0 = performance.now();
    const err = await expectCode(toPixelValues(bomb, spec, limits), 'image_too_large');
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(err.message).toContain('30000×30000');
    // decodeImage refuses it too, without touching pixels
    await expectCode(decodeImage(bomb, limits), 'image_too_large');
  });

  it('a real image over the pixel limit: image_too_large', async () => {
    await expectCode(toPixelValues(png, spec, { ...limits, maxPixels: 160 * 90 - 1 }), 'image_too_large');
    await expect(toPixelValues(png, spec, { ...limits, maxPixels: 160 * 90 })).resolves.toBeInstanceOf(Float32Array);
  });

  it('isInferenceError accepts the plain shape an error has after a worker boundary', () => {
    const e = new InferenceError('timeout', 'Took\ntoo long.');
    expect(e.message).toBe('Took too long.');
    expect(isInferenceError(e, 'timeout')).toBe(true);
    expect(isInferenceError(e, 'image_empty')).toBe(false);
    expect(isInferenceError({ name: 'InferenceError', code: 'timeout', message: 'x' })).toBe(true);
    expect(isInferenceError({ name: 'InferenceError', code: 'nope', message: 'x' })).toBe(false);
    expect(isInferenceError(new Error('x'))).toBe(false);
  });
});

describe('geometry and weights', () => {
  it('shortest-crop follows torchvision: int(S * long / short), round-half-even offsets', () => {
    expect(resizeGeometry(160, 90, { size: 32, resize: 'shortest-crop' })).toEqual({ width: 56, height: 32, left: 12, top: 0, cropWidth: 32, cropHeight: 32 });
    // (35 - 32) / 2 = 1.5 -> 2 ; (37 - 32) / 2 = 2.5 -> 2
    expect(resizeGeometry(35, 32, { size: 32, resize: 'shortest-crop' }).left).toBe(2);
    expect(resizeGeometry(37, 32, { size: 32, resize: 'shortest-crop' }).left).toBe(2);
    expect(resizeGeometry(75, 130, { size: 32, resize: 'squash' })).toEqual({ width: 32, height: 32, left: 0, top: 0, cropWidth: 32, cropHeight: 32 });
  });

  it('caches weight tables per (kernel, in, out)', () => {
    const a = axisWeights('bicubic', 640, 64);
    expect(axisWeights('bicubic', 640, 64)).toBe(a);
    expect(axisWeights('bilinear', 640, 64)).not.toBe(a);
    // PIL: support = 2 * scale -> ksize = ceil(20) * 2 + 1
    expect(a.ksize).toBe(41);
    // each row of fixed-point weights sums to ~1 << 22
    for (let i = 0; i < 64; i++) {
      let s = 0;
      for (let k = 0; k < a.bounds[i * 2 + 1]!; k++) s += a.coeffs[i * a.ksize + k]!;
      expect(Math.abs(s - (1 << 22))).toBeLessThan(64);
    }
  });

  it('writes into a batch buffer at an offset', async () => {
    const spec = specFor('blip32');
    const bytes = fixtureBytes(byName('photo_sq_97x97'));
    const single = await toPixelValues(bytes, spec, limits);
    const batch = new Float32Array(2 * single.length);
    await toPixelValues(bytes, spec, limits, batch, single.length);
    expect(Array.from(batch.subarray(single.length))).toEqual(Array.from(single));
    expect(batch[0]).toBe(0);
  });
});
