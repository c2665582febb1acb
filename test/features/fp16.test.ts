import { describe, expect, it } from 'vitest';
import { decodeHalf, encodeHalf, halfBitsOf, halfValue, roundToHalf } from '../../src/features/fp16.ts';

const bitsOf = (x: number): number => new Uint32Array(new Float32Array([x]).buffer)[0]!;
const half = (x: number): number => halfBitsOf(bitsOf(x));
const isNanHalf = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

/** A seeded generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('binary16 conversion', () => {
  it('every half that is not NaN survives decode then encode bit for bit', () => {
    const all = Buffer.alloc(65536 * 2);
    for (let h = 0; h < 65536; h++) all.writeUInt16LE(h, 2 * h);
    const values = decodeHalf(all);
    const back = encodeHalf(values);
    for (let h = 0; h < 65536; h++) {
      const got = back.readUInt16LE(2 * h);
      if (isNanHalf(h)) expect(isNanHalf(got), `NaN ${h.toString(16)}`).toBe(true);
      else if (got !== h) expect(got.toString(16), `half ${h.toString(16)} (${values[h]})`).toBe(h.toString(16));
    }
  });

  it('edge values land where IEEE 754 puts them', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff], // largest half
      [65519.99, 0x7bff],
      [65520, 0x7c00], // halfway to 2^16 rounds to even: overflow to infinity
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // halfway between 0 and the smallest subnormal: ties to even (zero)
      [2 ** -25 * 1.0000001, 0x0001],
      [-(2 ** -25), 0x8000],
      [3 * 2 ** -25, 0x0002], // halfway between 1 and 2 subnormal ulps: to even
      [5 * 2 ** -25, 0x0002],
      [1e-10, 0x0000],
      [2 ** -14 - 2 ** -25, 0x0400], // halfway between the largest subnormal and the smallest normal: to even
      [1 + 2 ** -11, 0x3c00], // tie, even below
      [1 + 3 * 2 ** -11, 0x3c02], // tie, even above
      [1 + 2 ** -11 + 2 ** -20, 0x3c01],
    ];
    for (const [x, h] of cases) expect(half(x).toString(16), String(x)).toBe(h.toString(16));
    expect(isNanHalf(half(NaN))).toBe(true);
    expect(Number.isNaN(halfValue(0x7e00))).toBe(true);
    expect(Object.is(halfValue(0x8000), -0)).toBe(true);
  });

  it('every midpoint between neighbouring halves rounds to the even one, and nudged off it to the nearer one', () => {
    for (let h = 0; h < 0x7bff; h++) {
      const lo = halfValue(h);
      const hi = halfValue(h + 1);
      const mid = (lo + hi) / 2; // 12 significant bits: exact in float32
      const even = h % 2 === 0 ? h : h + 1;
      if (half(mid) !== even) expect(half(mid), `midpoint of ${h.toString(16)}`).toBe(even);
      const below = Math.fround(mid - (hi - lo) / 8);
      const above = Math.fround(mid + (hi - lo) / 8);
      if (half(below) !== h) expect(half(below), `below the midpoint of ${h.toString(16)}`).toBe(h);
      if (half(above) !== h + 1) expect(half(above), `above the midpoint of ${h.toString(16)}`).toBe(h + 1);
    }
  });

  it('random data round-trips to the nearest half: within half an ulp, relative error at most 2^-11 in the normal range', () => {
    const rnd = random(42);
    const n = 200_000;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const scale = 2 ** Math.floor(rnd() * 39 - 26); // 2^-26 .. 2^12, times up to 8: zero and subnormals to 32768
      x[i] = (rnd() * 2 - 1) * 8 * scale;
    }
    const y = decodeHalf(encodeHalf(x));
    for (let i = 0; i < n; i++) {
      const xi = x[i]!;
      const h = half(xi);
      const v = y[i]!;
      if (v !== halfValue(h)) expect(v, `x=${xi}`).toBe(halfValue(h));
      const mag = h & 0x7fff;
      const ulp = halfValue(mag + 1) - halfValue(mag);
      const err = Math.abs(v - xi);
      if (!(err <= ulp / 2)) expect(err, `x=${xi} h=${h.toString(16)}`).toBeLessThanOrEqual(ulp / 2);
      if (Math.abs(xi) >= 2 ** -14 && !(err <= Math.abs(xi) * 2 ** -11)) expect(err / Math.abs(xi)).toBeLessThanOrEqual(2 ** -11);
    }
    expect(roundToHalf(0.1)).toBe(halfValue(0x2e66));
  });

  it('decodes data that is not 2-byte aligned, and refuses an odd byte count', () => {
    const buf = Buffer.alloc(7);
    buf.writeUInt16LE(0x3c00, 1);
    buf.writeUInt16LE(0xc000, 3);
    expect(Array.from(decodeHalf(buf.subarray(1, 5)))).toEqual([1, -2]);
    expect(() => decodeHalf(buf.subarray(0, 3))).toThrow(RangeError);
  });
});
