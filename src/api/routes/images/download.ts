import type { Context } from 'hono';
import type { BlobKind } from '../../../storage/blob.ts';
import { ApiError } from '../../errors.ts';
import type { ApiEnv } from '../../types.ts';
import { visibleImage } from './schema.ts';

/**
 * The stored bytes. Content the user uploaded is served so that a browser cannot run it on this
 * origin (an SVG with script): a sandboxing CSP, nosniff (set for every answer) and a long cache,
 * since the bytes behind a key never change.
 */
export async function download(c: Context<ApiEnv>, id: string, kind: BlobKind): Promise<Response> {
  const image = await visibleImage(c, id);
  const bytes = await c.var.ctx.blobs.get(image.sha256, kind);
  if (!bytes) throw new ApiError('not_found', `The ${kind} of image ${id} is not stored.`);
  return c.body(new Uint8Array(bytes), 200, {
    'content-type': kind === 'thumbnail' ? 'image/webp' : image.mime,
    'content-security-policy': "default-src 'none'; sandbox",
    'cache-control': 'private, max-age=31536000, immutable',
    etag: `"${image.sha256}${kind === 'thumbnail' ? '-t' : ''}"`,
  });
}
