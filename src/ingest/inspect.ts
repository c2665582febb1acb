/**
 * What ingestion records about an image before anything is written: the sha256 (the dedupe key with
 * the collection), the MIME type, the displayed size, and a thumbnail. Validation is the inference
 * layer's (preprocess.decodeImage: bytes, format, pixels from the header); here every pixel is then
 * decoded once, into the thumbnail, under the decode-time cap, so a truncated file is refused now
 * and not by a worker later.
 */
import { createHash } from 'node:crypto';
import { classifyDecodeError, decodeImage, type DecodedImage } from '../inference/preprocess.ts';
import { IngestError } from './errors.ts';
import { type IngestLimits, withDeadline } from './limits.ts';

export type InspectLimits = Pick<IngestLimits, 'maxBytes' | 'maxPixels' | 'decodeTimeoutMs'>;

export interface InspectedImage {
  /** Hex sha256 of the bytes as received. */
  sha256: string;
  mime: string;
  /** sharp's format name: jpeg, png, webp, gif, avif, heif, tiff. */
  format: string;
  /** As displayed (EXIF orientation applied); the first frame of an animation. */
  width: number;
  height: number;
  bytes: number;
  /** WebP, at most THUMBNAIL_SIDE on its longest side, oriented, first frame. */
  thumbnail: Buffer;
}

export const THUMBNAIL_SIDE = 256;

const MIME: Record<string, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  avif: 'image/avif',
  heif: 'image/heif',
  tiff: 'image/tiff',
};

function mimeOf(format: string, bytes: Uint8Array): string {
  // libvips calls AVIF and HEIC both `heif`; the ISO-BMFF brand tells them apart.
  if (format === 'heif') {
    const brand = Buffer.from(bytes.subarray(8, 12)).toString('latin1');
    if (brand === 'avif' || brand === 'avis') return 'image/avif';
  }
  return MIME[format] ?? 'application/octet-stream';
}

async function render(bytes: Uint8Array, limits: InspectLimits, side: number): Promise<{ img: DecodedImage; thumbnail: Buffer }> {
  const img = await decodeImage(bytes, limits);
  const pipeline = img
    .pipeline()
    // libvips stops working on its own after this (whole seconds); the deadline answers sooner.
    .timeout({ seconds: Math.max(1, Math.ceil(limits.decodeTimeoutMs / 1000)) })
    .resize(side, side, { fit: 'inside', withoutEnlargement: true })
    .webp({ quality: 80 });
  try {
    return { img, thumbnail: await pipeline.toBuffer() };
  } catch (e) {
    if (/timeout/i.test(e instanceof Error ? e.message : '')) throw timeoutError(limits, e);
    throw classifyDecodeError(e, 'pixels');
  }
}

function timeoutError(limits: InspectLimits, cause?: unknown): IngestError {
  return new IngestError('decode_timeout', `The image did not decode within ${limits.decodeTimeoutMs} ms.`, { cause });
}

function bounded<T>(work: Promise<T>, limits: InspectLimits): Promise<T> {
  return withDeadline(work, limits.decodeTimeoutMs, () => timeoutError(limits));
}

/** The dedupe key of an image: hex sha256 of its bytes as received. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Validates and describes an image. Throws InferenceError (image_empty, image_too_many_bytes,
 * image_unsupported, image_corrupt, image_too_large) or IngestError decode_timeout.
 */
export async function inspectImage(bytes: Uint8Array, limits: InspectLimits): Promise<InspectedImage> {
  const { img, thumbnail } = await bounded(render(bytes, limits, THUMBNAIL_SIDE), limits);
  return {
    sha256: sha256Hex(bytes),
    mime: mimeOf(img.format, bytes),
    format: img.format,
    width: img.width,
    height: img.height,
    bytes: bytes.byteLength,
    thumbnail,
  };
}

/** A WebP thumbnail (longest side `side`, EXIF-rotated, first frame), with the same checks as inspectImage. */
export async function makeThumbnail(bytes: Uint8Array, limits: InspectLimits, side = THUMBNAIL_SIDE): Promise<Buffer> {
  return (await bounded(render(bytes, limits, side), limits)).thumbnail;
}
