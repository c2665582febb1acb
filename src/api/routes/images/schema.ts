import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { getImage, type Image as Row } from '../../../db/queries/images.ts';
import { imageStatus } from '../../../db/schema/index.ts';
import { ApiError } from '../../errors.ts';
import { canAccess } from '../../middleware/auth.ts';
import { iso, Timestamp, Uuid } from '../../schemas.ts';
import type { ApiEnv } from '../../types.ts';

export const Metadata = z.record(z.string(), z.unknown()).openapi('Metadata', { description: 'Free-form JSON object, filterable by containment' });

/** A multipart text field holding a JSON object. */
export const MetadataField = z
  .string()
  .max(256 * 1024)
  .transform((s, ctx) => {
    try {
      const v: unknown = JSON.parse(s);
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // reported below
    }
    ctx.addIssue({ code: 'custom', message: 'must be a JSON object' });
    return z.NEVER;
  })
  .openapi({ type: 'string', description: 'A JSON object, e.g. {"sku": "A-1"}' });

export const Image = z
  .object({
    id: Uuid,
    collectionId: Uuid,
    sha256: z.string(),
    source: z.string().openapi({ description: '`upload:<filename>`, the URL, or the path under the ingest root' }),
    mime: z.string(),
    width: z.number().int(),
    height: z.number().int(),
    bytes: z.number().int(),
    metadata: Metadata,
    caption: z.string().nullable(),
    status: z.enum(imageStatus).openapi({ description: 'pending until its features are extracted' }),
    error: z.string().nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    thumbnailUrl: z.string().openapi({ example: '/v1/images/0b6f3c1e-6d8f-4a57-9d38-2f1b7d1d6a10/thumbnail' }),
    originalUrl: z.string(),
  })
  .openapi('Image');
export type Image = z.infer<typeof Image>;

export const IngestResult = z
  .object({
    image: Image,
    created: z.boolean().openapi({ description: 'False when the collection already held these bytes' }),
    jobId: z.string().nullable().openapi({ description: 'The extraction job, while the image is pending' }),
  })
  .openapi('IngestResult');
export type IngestResult = z.infer<typeof IngestResult>;

export const WaitQuery = z.strictObject({
  wait: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true')
    .openapi({ param: { name: 'wait', in: 'query' }, description: `Wait up to ${30} s for extraction to finish` }),
});

export function toImage(i: Row): Image {
  return {
    id: i.id,
    collectionId: i.collectionId,
    sha256: i.sha256,
    source: i.source,
    mime: i.mime,
    width: i.width,
    height: i.height,
    bytes: i.bytes,
    metadata: i.metadata as Record<string, unknown>,
    caption: i.caption,
    status: i.status,
    error: i.error,
    createdAt: iso(i.createdAt),
    updatedAt: iso(i.updatedAt),
    thumbnailUrl: `/v1/images/${i.id}/thumbnail`,
    originalUrl: `/v1/images/${i.id}/original`,
  };
}

/** The live image if this key may see its collection; otherwise the same 404 as for none. */
export async function visibleImage(c: Context<ApiEnv>, id: string): Promise<Row> {
  const image = await getImage(c.var.ctx.db, id);
  if (!image || !canAccess(c.var.principal, image.collectionId)) throw new ApiError('not_found', `No image ${id}.`);
  return image;
}
