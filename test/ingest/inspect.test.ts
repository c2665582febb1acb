import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyError } from '../../src/ingest/errors.ts';
import { inspectImage, makeThumbnail } from '../../src/ingest/inspect.ts';
import { type HostileImage, makeImageCorpus, UPRIGHT } from '../fixtures/hostile/make.ts';

const limits = { maxBytes: 50 * 1024 * 1024, maxPixels: 40_000_000, decodeTimeoutMs: 10_000 };
let dir: string;
let corpus: HostileImage[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mira-hostile-'));
  corpus = await makeImageCorpus(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bytesOf = (name: string) => readFileSync(corpus.find((c) => c.name === name)!.file);

async function outcome(bytes: Uint8Array, l = limits): Promise<string> {
  try {
    await inspectImage(bytes, l);
    return 'ok';
  } catch (e) {
    return classifyError(e).code;
  }
}

/** Mean colour of the central half of a quadrant of an RGB raw image. */
function quadrantColour(data: Buffer, w: number, h: number, q: number): number[] {
  const x0 = q % 2 === 0 ? 0 : w / 2;
  const y0 = q < 2 ? 0 : h / 2;
  const sum = [0, 0, 0];
  let n = 0;
  for (let y = Math.floor(y0 + h / 8); y < y0 + (3 * h) / 8; y++) {
    for (let x = Math.floor(x0 + w / 8); x < x0 + (3 * w) / 8; x++) {
      for (let c = 0; c < 3; c++) sum[c]! += data[(y * w + x) * 3 + c]!;
      n++;
    }
  }
  return sum.map((s) => s / n);
}

/**
 * Each quadrant of the thumbnail is nearest to its own colour of UPRIGHT (so the orientation is
 * right) and within `tolerance` of it (CMYK goes through sharp's ICC round trip, which shifts colours).
 */
async function expectUpright(thumb: Buffer, label: string, tolerance = 40): Promise<void> {
  const { data, info } = await sharp(thumb).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  expect([info.width, info.height], label).toEqual([UPRIGHT.width, UPRIGHT.height]);
  for (let q = 0; q < 4; q++) {
    const got = quadrantColour(data, info.width, info.height, q);
    const dists = UPRIGHT.quadrants.map((want) => Math.max(...got.map((v, c) => Math.abs(v - want[c]!))));
    const msg = `${label}: quadrant ${q} is ${got.map(Math.round)}, expected about ${UPRIGHT.quadrants[q]}`;
    expect(dists.indexOf(Math.min(...dists)), msg).toBe(q);
    expect(dists[q], msg).toBeLessThan(tolerance);
  }
}

describe('inspectImage on the hostile corpus', () => {
  it('gives every file its documented outcome', async () => {
    for (const img of corpus) {
      expect(await outcome(readFileSync(img.file)), `${img.name} (${img.why})`).toBe(img.expect);
    }
  });

  it('refuses a pixel bomb from its header, in a few hundred bytes, without decoding', async () => {
    const bomb = bytesOf('bomb.png');
    expect(bomb.length).toBeLessThan(4096);
    const t0 = performance.now();
    await expect(inspectImage(bomb, limits)).rejects.toMatchObject({ code: 'image_too_large' });
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(await outcome(bytesOf('bomb.jpg'))).toBe('image_too_large');
  });

  it('describes a good image: sha256, mime, displayed size, bytes, and a WebP thumbnail', async () => {
    const bytes = bytesOf('ok.jpg');
    const info = await inspectImage(bytes, limits);
    expect(info).toMatchObject({ mime: 'image/jpeg', format: 'jpeg', width: 120, height: 90, bytes: bytes.length });
    expect(info.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect((await sharp(info.thumbnail).metadata()).format).toBe('webp');
    expect((await inspectImage(bytesOf('ok.png'), limits)).mime).toBe('image/png');
  });

  it('applies every EXIF orientation 1-8: displayed size and the thumbnail show the upright picture', async () => {
    for (let o = 1; o <= 8; o++) {
      const bytes = bytesOf(`orientation-${o}.jpg`);
      expect((await sharp(bytes).metadata()).orientation, `fixture ${o} carries its tag`).toBe(o);
      const info = await inspectImage(bytes, limits);
      expect([info.width, info.height], `orientation ${o}`).toEqual([UPRIGHT.width, UPRIGHT.height]);
      await expectUpright(info.thumbnail, `orientation ${o}`);
      await expectUpright(await makeThumbnail(bytes, limits), `makeThumbnail, orientation ${o}`);
    }
  });

  it('accepts CMYK and 16-bit images and renders them in 8-bit sRGB', async () => {
    expect((await sharp(bytesOf('cmyk.jpg')).metadata()).space).toBe('cmyk');
    expect((await sharp(bytesOf('rgb16.png')).metadata()).depth).toBe('ushort');
    await expectUpright((await inspectImage(bytesOf('cmyk.jpg'), limits)).thumbnail, 'cmyk.jpg', 100);
    await expectUpright((await inspectImage(bytesOf('rgb16.png'), limits)).thumbnail, 'rgb16.png');
  });

  it('uses the first frame of an animated GIF', async () => {
    const bytes = bytesOf('animated.gif');
    expect((await sharp(bytes).metadata()).pages).toBe(2);
    const info = await inspectImage(bytes, limits);
    expect([info.mime, info.width, info.height]).toEqual(['image/gif', 40, 30]);
    const { data } = await sharp(info.thumbnail).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    expect(data[0]! > 150 && data[2]! < 100, `first pixel ${[...data.subarray(0, 3)]} should be red (frame 1), not blue`).toBe(true);
  });

  it('caps bytes and pixels from the limits it is given', async () => {
    expect(await outcome(bytesOf('ok.jpg'), { ...limits, maxBytes: 100 })).toBe('image_too_many_bytes');
    expect(await outcome(bytesOf('ok.jpg'), { ...limits, maxPixels: 120 * 90 - 1 })).toBe('image_too_large');
    expect(await outcome(bytesOf('ok.jpg'), { ...limits, maxPixels: 120 * 90 })).toBe('ok');
  });

  it('stops at the decode-time cap with decode_timeout', async () => {
    const big = Buffer.alloc(2400 * 1600 * 3);
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
    const png = await sharp(big, { raw: { width: 2400, height: 1600, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
    const err = await inspectImage(png, { ...limits, decodeTimeoutMs: 1 }).catch((e: unknown) => e);
    expect(classifyError(err)).toMatchObject({ code: 'decode_timeout', status: 422, retryable: false });
  });
});
