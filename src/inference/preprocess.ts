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
import sharp from 'sharp';
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
  pipeline: () => sharp.Sharp;
}

/** An RGB image: 8-bit, interleaved, `width * height * 3` bytes. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

function sharpOptions(limits: ImageLimits, ignoreIcc: boolean): sharp.SharpOptions {
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
    // PIL's convert('RGB') ignores ICC profiles, and the reference transforms use it; keep the stored
    // values so that embeddings match. (CMYK keeps its profile: see rgbPipeline.)
    ignoreIcc,
    sequentialRead: true,
  };
}

function classifyDecodeError(e: unknown, stage: 'header' | 'pixels'): InferenceError {
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
  let meta: sharp.Metadata;
  try {
    meta = await sharp(buf, sharpOptions(limits, true)).metadata();
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
  const ignoreIcc = space !== 'cmyk';
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
    pipeline: () => sharp(buf, sharpOptions(limits, ignoreIcc)),
  };
}

/**
 * Decodes to 8-bit sRGB RGB, interleaved: orientation applied, alpha dropped (keeping the stored
 * colour, as PIL's convert('RGB')) or flattened over `alpha.background`.
 */
export async function decodeRgb(bytes: Uint8Array, alpha: PreprocessSpec['alpha'], limits: ImageLimits): Promise<RgbImage> {
  const img = await decodeImage(bytes, limits);
  let p = img.pipeline();
  if (alpha.mode === 'flatten') {
    const [r, g, b] = alpha.background;
    p = p.flatten({ background: { r, g, b } });
  } else {
    p = p.removeAlpha();
  }
  // Grey, palette, CMYK (through its ICC profile, or libvips' fallback CMYK profile) and 16-bit
  // (rgb16 / grey16, scaled by 1/256) all end as 3-band 8-bit sRGB.
  p = p.toColourspace('srgb').raw({ depth: 'uchar' });
  let out: { data: Buffer; info: sharp.OutputInfo };
  try {
    out = await p.toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw classifyDecodeError(e, 'pixels');
  }
  const { data, info } = out;
  if (info.width !== img.width || info.height !== img.height) {
    throw new InferenceError('image_corrupt', `The image decoded to ${info.width}×${info.height}, not the ${img.width}×${img.height} its header gives.`);
  }
  const n = info.width * info.height;
  if (info.channels === 3) return { data, width: info.width, height: info.height };
  // Defensive: sharp gives 3 bands after toColourspace('srgb'); widen anything else.
  const rgb = new Uint8Array(n * 3);
  const c = info.channels;
  for (let i = 0; i < n; i++) {
    const s = i * c;
    const v0 = data[s]!;
    rgb[i * 3] = v0;
    rgb[i * 3 + 1] = c >= 3 ? data[s + 1]! : v0;
    rgb[i * 3 + 2] = c >= 3 ? data[s + 2]! : v0;
  }
  return { data: rgb, width: info.width, height: info.height };
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
  const input = src.data;

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
  let mid: Uint8Array;
  let midW: number; // width of `mid` in pixels
  let midX0: number; // output column of mid's first column
  if (needH) {
    const wh = axisWeights(kernel, inW, outW);
    midW = cw;
    midX0 = left;
    mid = new Uint8Array(rows * cw * 3);
    const { bounds, coeffs, ksize } = wh;
    for (let r = 0; r < rows; r++) {
      const rowIn = (yFirst + r) * inW * 3;
      let o = r * cw * 3;
      for (let xx = left; xx < left + cw; xx++) {
        const xmin = bounds[xx * 2]!;
        const n = bounds[xx * 2 + 1]!;
        const kb = xx * ksize;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        let p = rowIn + xmin * 3;
        for (let x = 0; x < n; x++, p += 3) {
          const kv = coeffs[kb + x]!;
          s0 += input[p]! * kv;
          s1 += input[p + 1]! * kv;
          s2 += input[p + 2]! * kv;
        }
        mid[o++] = clip8(s0);
        mid[o++] = clip8(s1);
        mid[o++] = clip8(s2);
      }
    }
  } else {
    // Columns unchanged: crop columns straight from the source rows we need.
    midW = cw;
    midX0 = left;
    mid = new Uint8Array(rows * cw * 3);
    for (let r = 0; r < rows; r++) {
      const s = ((yFirst + r) * inW + left) * 3;
      mid.set(input.subarray(s, s + cw * 3), r * cw * 3);
    }
  }
  void midX0;

  if (!wv) {
    // Rows unchanged: mid already holds rows [top, top + ch).
    return { data: mid, width: cw, height: ch };
  }

  // Vertical pass over mid (whose row 0 is source row yFirst).
  const out = new Uint8Array(cw * ch * 3);
  const { bounds, coeffs, ksize } = wv;
  const stride = midW * 3;
  for (let yy = top; yy < top + ch; yy++) {
    const ymin = bounds[yy * 2]! - yFirst;
    const n = bounds[yy * 2 + 1]!;
    const kb = yy * ksize;
    let o = (yy - top) * cw * 3;
    for (let i = 0; i < cw * 3; i += 3) {
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      let p = ymin * stride + i;
      for (let y = 0; y < n; y++, p += stride) {
        const kv = coeffs[kb + y]!;
        s0 += mid[p]! * kv;
        s1 += mid[p + 1]! * kv;
        s2 += mid[p + 2]! * kv;
      }
      out[o++] = clip8(s0);
      out[o++] = clip8(s1);
      out[o++] = clip8(s2);
    }
  }
  return { data: out, width: cw, height: ch };
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
