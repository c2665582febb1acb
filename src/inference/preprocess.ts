/**
 * Image preprocessing: bytes -> normalized NCHW float32, matching the reference Python transforms.
 *
 * Decoding is sharp's (libvips): EXIF orientation, CMYK / 16-bit / grey / palette -> 8-bit sRGB RGB,
 * alpha dropped or flattened, the first frame of an animation. Resizing is NOT sharp's: BLIP's and
 * CLIP's reference transforms resize with PIL (`Image.resize(..., BICUBIC)`; torchvision's Resize
 * on a PIL image calls it), and no sharp kernel reproduces PIL's antialiased bicubic (PIL widens the
 * a = -0.5 cubic by the downscale factor and rounds to uint8 between its two passes). So the raw RGB
 * buffer is resized here with PIL's own separable algorithm (Pillow's `ImagingResample`, 8-bit path):
 * double-precision weights per output pixel, normalized, converted to 22-bit fixed point, a
 * horizontal pass then a vertical pass, each rounding and clipping to uint8. The weight tables are
 * cached per (kernel, in, out).
 */
import sharp, { type Metadata, type OutputInfo, type Sharp, type SharpOptions } from 'sharp';
import type { PreprocessSpec } from './manifest.ts';
import { InferenceError } from './errors.ts';

export interface ImageLimits {
  /** Largest width × height accepted (after nothing is decoded: read from the header). */
  maxPixels: number;
  /** Largest encoded size in bytes. */
  maxBytes: number;
}

/** Formats accepted from users. SVG, PDF and the like are refused: they render, they don't decode. */
const ACCEPTED_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'avif', 'heif', 'tiff']);

export interface DecodedImage {
  /** sharp's decoder name: jpeg, png, webp, gif, avif, heif, tiff. */
  format: string;
  /** Size as displayed, i.e. after the EXIF orientation is applied. */
  width: number;
  height: number;
  /** Size as stored. */
  storedWidth: number;
  storedHeight: number;
  /** EXIF orientation (1-8), 1 when absent. */
  orientation: number;
  /** sharp's interpretation of the stored pixels: srgb, b-w, cmyk, rgb16, grey16, ... */
  space: string;
  channels: number;
  depth: string;
  hasAlpha: boolean;
  isPalette: boolean;
  /** Number of frames; only the first is used. */
  pages: number;
  /** A fresh pipeline on these bytes with the validated options (orientation, first frame, limits). */
  pipeline: () => Sharp;
}

/** An RGB image: 8-bit, interleaved, `width * height * 3` bytes. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

function sharpOptions(limits: ImageLimits): SharpOptions {
  return {
    // Refuse truncated files rather than return a half-decoded image. Stricter levels ('error',
    // 'warning') also refuse harmless oddities common in camera JPEGs (extraneous bytes).
    failOn: 'truncated',
    // Checked by libvips against the header before any pixel is decoded (we check it too).
    limitInputPixels: Math.max(1, Math.floor(limits.maxPixels)),
    autoOrient: true,
    // The first frame of an animation or multi-page file.
    pages: 1,
    page: 0,
    // PIL's convert('RGB') ignores ICC profiles, and the reference transforms use it: keep the stored
    // values so that embeddings match the reference.
    ignoreIcc: true,
    sequentialRead: true,
  };
}

/** A sharp/libvips failure as a typed error (also used by src/ingest/inspect.ts). */
export function classifyDecodeError(e: unknown, stage: 'header' | 'pixels'): InferenceError {
  const msg = e instanceof Error ? e.message : String(e);
  if (/pixel limit/i.test(msg)) {
    return new InferenceError('image_too_large', 'The image has more pixels than allowed.', { cause: e });
  }
  if (/unsupported image format/i.test(msg)) {
    return new InferenceError('image_unsupported', 'The file is not an image in a supported format.', { cause: e });
  }
  if (/empty/i.test(msg) && stage === 'header') {
    return new InferenceError('image_empty', 'The image is empty.', { cause: e });
  }
  const detail = msg.split('\n').map((s) => s.trim()).find((s) => s.length > 0) ?? 'undecodable';
  return new InferenceError(
    'image_corrupt',
    stage === 'header'
      ? `The image header could not be read (${detail}).`
      : `The image is truncated or corrupt and could not be decoded (${detail}).`,
    { cause: e },
  );
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Reads the header and validates the image without decoding its pixels: size limits first, then the
 * format, then the pixel count. Throws an InferenceError with code image_empty,
 * image_too_many_bytes, image_unsupported, image_corrupt or image_too_large.
 */
export async function decodeImage(bytes: Uint8Array, limits: ImageLimits): Promise<DecodedImage> {
  if (bytes.byteLength === 0) throw new InferenceError('image_empty', 'The image is empty (0 bytes).');
  if (bytes.byteLength > limits.maxBytes) {
    throw new InferenceError(
      'image_too_many_bytes',
      `The image is ${bytes.byteLength} bytes; the limit is ${limits.maxBytes} bytes.`,
    );
  }
  const buf = toBuffer(bytes);
  let meta: Metadata;
  try {
    // The header only: no pixel is decoded here. libvips' own pixel limit is lifted for this read so
    // that the refusal below can name the size; the decoding pipeline keeps it as a second guard.
    meta = await sharp(buf, { ...sharpOptions(limits), limitInputPixels: false }).metadata();
  } catch (e) {
    throw classifyDecodeError(e, 'header');
  }
  if (!ACCEPTED_FORMATS.has(meta.format)) {
    throw new InferenceError('image_unsupported', `Images in ${meta.format} format are not accepted.`);
  }
  const storedWidth = meta.width;
  const storedHeight = meta.pageHeight ?? meta.height;
  if (!(storedWidth > 0 && storedHeight > 0)) {
    throw new InferenceError('image_corrupt', 'The image header gives no size.');
  }
  if (storedWidth * storedHeight > limits.maxPixels) {
    throw new InferenceError(
      'image_too_large',
      `The image is ${storedWidth}×${storedHeight} pixels; the limit is ${limits.maxPixels} pixels.`,
    );
  }
  const orientation = meta.orientation ?? 1;
  const swap = orientation >= 5 && orientation <= 8;
  const space = String(meta.space);
  return {
    format: meta.format,
    width: swap ? storedHeight : storedWidth,
    height: swap ? storedWidth : storedHeight,
    storedWidth,
    storedHeight,
    orientation,
    space,
    channels: meta.channels,
    depth: String(meta.depth),
    hasAlpha: meta.hasAlpha,
    isPalette: meta.isPalette,
    pages: meta.pages ?? 1,
    pipeline: () => sharp(buf, sharpOptions(limits)),
  };
}

/**
 * Decodes to 8-bit RGB, interleaved, with the values PIL's `.convert('RGB')` gives (what the
 * reference transforms see), orientation applied:
 * - grey, palette (transparent index included) and 16-bit images: sharp's conversion to 8-bit sRGB
 *   (16-bit: the high byte, as a 16 -> 8 bit cast);
 * - ICC profiles are ignored, as PIL ignores them;
 * - CMYK: the stored C, M, Y, K bands converted with PIL's formula
 *   (`255 - k - c * (255 - k) / 255`, PIL's rounding), not libvips' ICC conversion;
 * - alpha: `drop` discards it and keeps the stored colour; `flatten` composites over the background
 *   with the arithmetic of PIL's `Image.alpha_composite` onto an opaque background.
 */
export async function decodeRgb(bytes: Uint8Array, alpha: PreprocessSpec['alpha'], limits: ImageLimits): Promise<RgbImage> {
  const img = await decodeImage(bytes, limits);
  const cmyk = img.space === 'cmyk';
  const flatten = alpha.mode === 'flatten' && img.hasAlpha;
  let p = img.pipeline();
  if (!flatten) p = p.removeAlpha();
  // sharp converts CMYK to sRGB through an ICC profile at the start of its pipeline; a CMYK pipeline
  // hands the stored bands through untouched.
  p = cmyk ? p.pipelineColourspace('cmyk').toColourspace('cmyk') : p.toColourspace('srgb');
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await p.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw classifyDecodeError(e, 'pixels');
  }
  const { data, info } = out;
  if (info.width !== img.width || info.height !== img.height) {
    throw new InferenceError(
      'image_corrupt',
      `The image decoded to ${info.width}×${info.height}, not the ${img.width}×${img.height} its header gives.`,
    );
  }
  const c = info.channels;
  if (!cmyk && c === 3) return { data, width: info.width, height: info.height };
  const colourBands = cmyk ? 4 : c <= 2 ? 1 : 3;
  const hasAlpha = flatten && c > colourBands;
  const n = info.width * info.height;
  const rgb = new Uint8Array(n * 3);
  const [br, bg, bb] = alpha.background;
  for (let i = 0, s = 0, o = 0; i < n; i++, s += c, o += 3) {
    let r: number;
    let g: number;
    let b: number;
    if (cmyk) {
      // Pillow's cmyk2rgb: nk - MULDIV255(x, nk), clipped
      const nk = 255 - data[s + 3]!;
      r = nk - muldiv255(data[s]!, nk);
      g = nk - muldiv255(data[s + 1]!, nk);
      b = nk - muldiv255(data[s + 2]!, nk);
      r = r < 0 ? 0 : r;
      g = g < 0 ? 0 : g;
      b = b < 0 ? 0 : b;
    } else if (colourBands === 1) {
      r = g = b = data[s]!;
    } else {
      r = data[s]!;
      g = data[s + 1]!;
      b = data[s + 2]!;
    }
    if (hasAlpha) {
      const a = data[s + colourBands]!;
      if (a !== 255) {
        // Pillow's alpha_composite (7 extra bits, rounded division by 255) over an opaque colour.
        const coef1 = a << 7;
        const coef2 = (255 << 7) - coef1;
        r = div255Shift(r * coef1 + br * coef2);
        g = div255Shift(g * coef1 + bg * coef2);
        b = div255Shift(b * coef1 + bb * coef2);
      }
    }
    rgb[o] = r;
    rgb[o + 1] = g;
    rgb[o + 2] = b;
  }
  return { data: rgb, width: info.width, height: info.height };
}

function muldiv255(a: number, b: number): number {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

/** Pillow's SHIFTFORDIV255(x + (0x80 << 7)) >> 7. */
function div255Shift(x: number): number {
  const t = x + (0x80 << 7);
  return (((t >> 8) + t) >> 8) >> 7;
}

// ---------------------------------------------------------------------------------------------
// PIL-compatible resampling (Pillow src/libImaging/Resample.c, 8 bits per channel)
// ---------------------------------------------------------------------------------------------

type Kernel = PreprocessSpec['kernel'];

const PRECISION_BITS = 32 - 8 - 2;

interface Filter {
  support: number;
  fn: (x: number) => number;
}

function bicubic(x: number): number {
  // PIL: a = -0.5
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function bilinear(x: number): number {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

function lanczos(x: number): number {
  return x > -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}

const FILTERS: Record<Exclude<Kernel, 'nearest'>, Filter> = {
  bicubic: { support: 2, fn: bicubic },
  bilinear: { support: 1, fn: bilinear },
  lanczos3: { support: 3, fn: lanczos },
};

/** Per-axis resampling weights for one (kernel, inSize, outSize). */
export interface AxisWeights {
  outSize: number;
  /** Taps per output pixel (row stride of `coeffs`). */
  ksize: number;
  /** For output i: first input index `bounds[2i]` and tap count `bounds[2i+1]`. */
  bounds: Int32Array;
  /** Fixed-point weights, PRECISION_BITS fractional bits. */
  coeffs: Int32Array;
}

const weightCache = new Map<string, AxisWeights>();
const WEIGHT_CACHE_MAX = 512;

/** PIL's precompute_coeffs + normalize_coeffs_8bpc, cached. */
export function axisWeights(kernel: Kernel, inSize: number, outSize: number): AxisWeights {
  const key = `${kernel}:${inSize}:${outSize}`;
  const hit = weightCache.get(key);
  if (hit) {
    // refresh LRU position
    weightCache.delete(key);
    weightCache.set(key, hit);
    return hit;
  }
  const w = kernel === 'nearest' ? nearestWeights(inSize, outSize) : computeWeights(FILTERS[kernel], inSize, outSize);
  weightCache.set(key, w);
  if (weightCache.size > WEIGHT_CACHE_MAX) {
    const oldest = weightCache.keys().next().value;
    if (oldest !== undefined) weightCache.delete(oldest);
  }
  return w;
}

function computeWeights(filter: Filter, inSize: number, outSize: number): AxisWeights {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const coeffs = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  const one = 1 << PRECISION_BITS;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const wv = filter.fn((x + xmin - center + 0.5) * ss);
      k[x] = wv;
      ww += wv;
    }
    const base = xx * ksize;
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? k[x]! / ww : k[x]!;
      coeffs[base + x] = v < 0 ? Math.trunc(-0.5 + v * one) : Math.trunc(0.5 + v * one);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { outSize, ksize, bounds, coeffs };
}

/** PIL's NEAREST resize is an affine transform: source = floor((i + 0.5) * in / out). */
function nearestWeights(inSize: number, outSize: number): AxisWeights {
  const bounds = new Int32Array(outSize * 2);
  const coeffs = new Int32Array(outSize);
  const scale = inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    bounds[i * 2] = Math.min(inSize - 1, Math.floor((i + 0.5) * scale));
    bounds[i * 2 + 1] = 1;
    coeffs[i] = 1 << PRECISION_BITS;
  }
  return { outSize, ksize: 1, bounds, coeffs };
}

const HALF = 1 << (PRECISION_BITS - 1);

function clip8(v: number): number {
  v >>= PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

export interface ResizeRegion {
  /** Size of the full resized image. */
  width: number;
  height: number;
  /** The part of it to produce (a crop): left, top, width, height. Defaults to all of it. */
  left?: number;
  top?: number;
  cropWidth?: number;
  cropHeight?: number;
}

/**
 * Resizes an interleaved RGB image like PIL's `Image.resize((width, height), kernel)` and returns
 * only the requested crop of the result (the same pixels PIL's `.crop()` would give, computed
 * without the rest). Output: interleaved RGB, cropWidth × cropHeight.
 */
export function resizeRgb(src: RgbImage, kernel: Kernel, region: ResizeRegion): RgbImage {
  const { width: outW, height: outH } = region;
  const left = region.left ?? 0;
  const top = region.top ?? 0;
  const cw = region.cropWidth ?? outW - left;
  const ch = region.cropHeight ?? outH - top;
  if (left < 0 || top < 0 || left + cw > outW || top + ch > outH || cw <= 0 || ch <= 0) {
    throw new RangeError(`crop ${left},${top} ${cw}×${ch} is outside ${outW}×${outH}`);
  }
  const inW = src.width;
  const inH = src.height;
  // A plain Uint8Array view (sharp hands out Buffers) keeps the loops below monomorphic.
  const input = plainBytes(src.data);

  if (kernel === 'nearest') return nearestResize(src, outW, outH, left, top, cw, ch);

  // PIL skips a pass whose axis keeps its size (the identity); so do we.
  const needH = outW !== inW;
  const needV = outH !== inH;
  const wv = needV ? axisWeights(kernel, inH, outH) : null;

  // Rows of the source the vertical pass reads, for the output rows we produce.
  let yFirst = top;
  let yLast = top + ch;
  if (wv) {
    yFirst = wv.bounds[top * 2]!;
    yLast = 0;
    for (let y = top; y < top + ch; y++) {
      const e = wv.bounds[y * 2]! + wv.bounds[y * 2 + 1]!;
      if (e > yLast) yLast = e;
    }
  }
  const rows = yLast - yFirst;

  // Horizontal pass: rows [yFirst, yLast) of the source, output columns [left, left + cw).
  // `mid` holds rows [yFirst, yLast) of the horizontally resized image, columns [left, left + cw).
  const mid = new Uint8Array(rows * cw * 3);
  if (needH) {
    const { bounds, coeffs, ksize } = axisWeights(kernel, inW, outW);
    const rowStride = inW * 3;
    const midStride = cw * 3;
    // Two rows per iteration share the weight loads (~30% faster in V8). int32 arithmetic, as in
    // Pillow: the sums stay well inside 32 bits.
    let r = 0;
    for (; r + 1 < rows; r += 2) {
      const rowIn = (yFirst + r) * rowStride;
      let o = r * midStride;
      let o2 = o + midStride;
      for (let xx = left; xx < left + cw; xx++) {
        const n = bounds[xx * 2 + 1]!;
        const kb = xx * ksize;
        let s0 = HALF, s1 = HALF, s2 = HALF, t0 = HALF, t1 = HALF, t2 = HALF;
        let p = rowIn + bounds[xx * 2]! * 3;
        for (let x = 0; x < n; x++, p += 3) {
          const kv = coeffs[kb + x]!;
          const q = p + rowStride;
          s0 = (s0 + Math.imul(input[p]!, kv)) | 0;
          s1 = (s1 + Math.imul(input[p + 1]!, kv)) | 0;
          s2 = (s2 + Math.imul(input[p + 2]!, kv)) | 0;
          t0 = (t0 + Math.imul(input[q]!, kv)) | 0;
          t1 = (t1 + Math.imul(input[q + 1]!, kv)) | 0;
          t2 = (t2 + Math.imul(input[q + 2]!, kv)) | 0;
        }
        mid[o++] = clip8(s0);
        mid[o++] = clip8(s1);
        mid[o++] = clip8(s2);
        mid[o2++] = clip8(t0);
        mid[o2++] = clip8(t1);
        mid[o2++] = clip8(t2);
      }
    }
    for (; r < rows; r++) {
      const rowIn = (yFirst + r) * rowStride;
      let o = r * midStride;
      for (let xx = left; xx < left + cw; xx++) {
        const n = bounds[xx * 2 + 1]!;
        const kb = xx * ksize;
        let s0 = HALF, s1 = HALF, s2 = HALF;
        let p = rowIn + bounds[xx * 2]! * 3;
        for (let x = 0; x < n; x++, p += 3) {
          const kv = coeffs[kb + x]!;
          s0 = (s0 + Math.imul(input[p]!, kv)) | 0;
          s1 = (s1 + Math.imul(input[p + 1]!, kv)) | 0;
          s2 = (s2 + Math.imul(input[p + 2]!, kv)) | 0;
        }
        mid[o++] = clip8(s0);
        mid[o++] = clip8(s1);
        mid[o++] = clip8(s2);
      }
    }
  } else {
    // Columns unchanged: crop columns straight from the source rows we need.
    for (let r = 0; r < rows; r++) {
      const s = ((yFirst + r) * inW + left) * 3;
      mid.set(input.subarray(s, s + cw * 3), r * cw * 3);
    }
  }

  if (!wv) {
    // Rows unchanged: mid already holds rows [top, top + ch).
    return { data: mid, width: cw, height: ch };
  }

  // Vertical pass over mid (whose row 0 is source row yFirst).
  const out = new Uint8Array(cw * ch * 3);
  const { bounds, coeffs, ksize } = wv;
  const stride = cw * 3;
  for (let yy = top; yy < top + ch; yy++) {
    const ymin = bounds[yy * 2]! - yFirst;
    const n = bounds[yy * 2 + 1]!;
    const kb = yy * ksize;
    let o = (yy - top) * cw * 3;
    let i = 0;
    // two pixels per iteration share the weight loads
    for (; i + 5 < cw * 3; i += 6) {
      let s0 = HALF, s1 = HALF, s2 = HALF, t0 = HALF, t1 = HALF, t2 = HALF;
      let p = ymin * stride + i;
      for (let y = 0; y < n; y++, p += stride) {
        const kv = coeffs[kb + y]!;
        s0 = (s0 + Math.imul(mid[p]!, kv)) | 0;
        s1 = (s1 + Math.imul(mid[p + 1]!, kv)) | 0;
        s2 = (s2 + Math.imul(mid[p + 2]!, kv)) | 0;
        t0 = (t0 + Math.imul(mid[p + 3]!, kv)) | 0;
        t1 = (t1 + Math.imul(mid[p + 4]!, kv)) | 0;
        t2 = (t2 + Math.imul(mid[p + 5]!, kv)) | 0;
      }
      out[o++] = clip8(s0);
      out[o++] = clip8(s1);
      out[o++] = clip8(s2);
      out[o++] = clip8(t0);
      out[o++] = clip8(t1);
      out[o++] = clip8(t2);
    }
    for (; i < cw * 3; i += 3) {
      let s0 = HALF, s1 = HALF, s2 = HALF;
      let p = ymin * stride + i;
      for (let y = 0; y < n; y++, p += stride) {
        const kv = coeffs[kb + y]!;
        s0 = (s0 + Math.imul(mid[p]!, kv)) | 0;
        s1 = (s1 + Math.imul(mid[p + 1]!, kv)) | 0;
        s2 = (s2 + Math.imul(mid[p + 2]!, kv)) | 0;
      }
      out[o++] = clip8(s0);
      out[o++] = clip8(s1);
      out[o++] = clip8(s2);
    }
  }
  return { data: out, width: cw, height: ch };
}

function plainBytes(a: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(a) === Uint8Array.prototype ? a : new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function nearestResize(src: RgbImage, outW: number, outH: number, left: number, top: number, cw: number, ch: number): RgbImage {
  const wx = axisWeights('nearest', src.width, outW).bounds;
  const wy = axisWeights('nearest', src.height, outH).bounds;
  const out = new Uint8Array(cw * ch * 3);
  let o = 0;
  for (let y = top; y < top + ch; y++) {
    const row = wy[y * 2]! * src.width;
    for (let x = left; x < left + cw; x++) {
      const p = (row + wx[x * 2]!) * 3;
      out[o++] = src.data[p]!;
      out[o++] = src.data[p + 1]!;
      out[o++] = src.data[p + 2]!;
    }
  }
  return { data: out, width: cw, height: ch };
}

/**
 * The resize (and crop) a spec asks for, as PIL-side geometry:
 * - `squash`: straight to size × size (BLIP's `Resize((s, s))`);
 * - `shortest-crop`: shortest side to size, the long side `int(size * long / short)` (torchvision's
 *   `Resize(size)`), then a center crop with torchvision's offsets `round((d - size) / 2)` (Python's
 *   round: half to even).
 */
export function resizeGeometry(width: number, height: number, spec: Pick<PreprocessSpec, 'size' | 'resize'>): Required<ResizeRegion> {
  const s = spec.size;
  if (spec.resize === 'squash') return { width: s, height: s, left: 0, top: 0, cropWidth: s, cropHeight: s };
  let w: number;
  let h: number;
  if (width <= height) {
    w = s;
    h = Math.trunc((s * height) / width);
  } else {
    h = s;
    w = Math.trunc((s * width) / height);
  }
  return { width: w, height: h, left: roundHalfEven((w - s) / 2), top: roundHalfEven((h - s) / 2), cropWidth: s, cropHeight: s };
}

function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

const lutCache = new Map<string, Float32Array>();

/** (v / 255 - mean[c]) / std[c] for v in 0..255, per channel: 768 floats. */
function normLut(mean: readonly number[], std: readonly number[]): Float32Array {
  const key = `${mean.join(',')}|${std.join(',')}`;
  let lut = lutCache.get(key);
  if (!lut) {
    lut = new Float32Array(256 * 3);
    for (let c = 0; c < 3; c++) {
      // float32 arithmetic, as ToTensor + Normalize do in torch
      const m = Math.fround(mean[c]!);
      const sd = Math.fround(std[c]!);
      for (let v = 0; v < 256; v++) lut[c * 256 + v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / sd);
    }
    if (lutCache.size > 64) lutCache.clear();
    lutCache.set(key, lut);
  }
  return lut;
}

/** Interleaved RGB size × size -> normalized planar CHW float32 (into `out` at `offset` if given). */
export function normalizeToChw(rgb: Uint8Array, size: number, spec: Pick<PreprocessSpec, 'mean' | 'std'>, out?: Float32Array, offset = 0): Float32Array {
  const plane = size * size;
  const dst = out ?? new Float32Array(3 * plane);
  if (dst.length < offset + 3 * plane) throw new RangeError('output buffer too small');
  const lut = normLut(spec.mean, spec.std);
  for (let i = 0, p = 0; i < plane; i++, p += 3) {
    dst[offset + i] = lut[rgb[p]!]!;
    dst[offset + plane + i] = lut[256 + rgb[p + 1]!]!;
    dst[offset + 2 * plane + i] = lut[512 + rgb[p + 2]!]!;
  }
  return dst;
}

/** Decoded RGB -> the model's size × size RGB (before normalization), per the spec. */
export function resizeForSpec(rgb: RgbImage, spec: Pick<PreprocessSpec, 'size' | 'resize' | 'kernel'>): RgbImage {
  const g = resizeGeometry(rgb.width, rgb.height, spec);
  if (g.width === rgb.width && g.height === rgb.height && g.left === 0 && g.top === 0 && g.cropWidth === rgb.width && g.cropHeight === rgb.height) {
    return rgb;
  }
  return resizeRgb(rgb, spec.kernel, g);
}

/**
 * Bytes -> Float32Array(3 * size * size), NCHW for one image, `(v / 255 - mean) / std`.
 * Pass `out`/`offset` to write straight into a batch tensor.
 */
export async function toPixelValues(
  bytes: Uint8Array,
  spec: PreprocessSpec,
  limits: ImageLimits,
  out?: Float32Array,
  offset = 0,
): Promise<Float32Array> {
  const rgb = await decodeRgb(bytes, spec.alpha, limits);
  const small = resizeForSpec(rgb, spec);
  return normalizeToChw(small.data, spec.size, spec, out, offset);
}
