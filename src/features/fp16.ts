/**
 * IEEE 754 binary16 <-> binary32. Node 20 has no Float16Array or Math.f16round, so this is done on
 * the bits: round to nearest, ties to even; values below half the smallest subnormal go to zero,
 * values from 65520 up to infinity; NaN stays NaN (quiet). Decoding goes through a table of all
 * 65,536 halves, since it runs once per stored value on every re-ranked query.
 */

/** The binary16 bits nearest to a float32 given as its bits. */
export function halfBitsOf(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const exp = f & 0x7f800000;
  const sig = f & 0x007fffff;
  if (exp >= 0x47800000) {
    // |x| >= 2^16 (past the largest half even after rounding), infinity or NaN.
    if (exp === 0x7f800000 && sig !== 0) return sign | 0x7e00 | (sig >>> 13);
    return sign | 0x7c00;
  }
  if (exp <= 0x38000000) {
    // |x| < 2^-14: a half subnormal, or zero below 2^-25.
    if (exp < 0x33000000) return sign;
    const shift = 113 - (exp >>> 23);
    let m = (0x00800000 | sig) >>> shift;
    // Add half an ulp unless this is an exact tie with an even result. The bits the shift dropped
    // (at most 11) take part through `sig & 0x7ff`.
    if ((m & 0x3fff) !== 0x1000 || (sig & 0x7ff) !== 0) m += 0x1000;
    return sign | (m >>> 13);
  }
  const halfExp = (exp - 0x38000000) >>> 13;
  let m = sig;
  if ((m & 0x3fff) !== 0x1000) m += 0x1000;
  // A carry out of the significand steps the exponent, and from the top one into infinity.
  return sign | (halfExp + (m >>> 13));
}

/** The value of binary16 bits, exactly. */
export function halfValue(h: number): number {
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  const s = h & 0x8000 ? -1 : 1;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1024 + m) * 2 ** (e - 25);
}

/** float32 bits of every half: copying bits is faster than storing floats. */
let table: Uint32Array | undefined;
function decodeTable(): Uint32Array {
  if (!table) {
    const values = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) values[h] = halfValue(h);
    table = new Uint32Array(values.buffer);
  }
  return table;
}

/** float32 values to little-endian binary16 bytes. */
export function encodeHalf(values: Float32Array): Buffer {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = Buffer.allocUnsafe(values.length * 2);
  for (let i = 0; i < bits.length; i++) {
    const h = halfBitsOf(bits[i]!);
    out[2 * i] = h & 0xff;
    out[2 * i + 1] = h >>> 8;
  }
  return out;
}

/** Little-endian binary16 bytes (any alignment) to float32 values. */
export function decodeHalf(bytes: Uint8Array): Float32Array {
  if (bytes.length % 2 !== 0) throw new RangeError(`binary16 data has an odd byte count (${bytes.length})`);
  const t = decodeTable();
  const out = new Float32Array(bytes.length / 2);
  const bits = new Uint32Array(out.buffer);
  if (bytes.byteOffset % 2 === 0) {
    const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, out.length);
    for (let i = 0; i < halves.length; i++) bits[i] = t[halves[i]!]!;
  } else {
    for (let i = 0; i < bits.length; i++) bits[i] = t[bytes[2 * i]! | (bytes[2 * i + 1]! << 8)]!;
  }
  return out;
}

/** The float32 a value becomes after a trip through binary16. */
export function roundToHalf(x: number): number {
  const f = new Float32Array([x]);
  return halfValue(halfBitsOf(new Uint32Array(f.buffer)[0]!));
}
