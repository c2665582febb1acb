import { createRoute, z } from '@hono/zod-openapi';
import { SEARCH_LIMITS } from '../../../search/limits.ts';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonBody, jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { modelFor } from './schema.ts';

export const MAX_TEXTS = 256;
export const MAX_IMAGES = 16;

const Body = z
  .strictObject({
    model: z.string().min(1).max(200).optional().openapi({ description: 'Default: the active model' }),
    texts: z.array(z.string().min(1).max(SEARCH_LIMITS.maxTextChars)).max(MAX_TEXTS).optional(),
    images: z
      .array(z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64').min(1))
      .max(MAX_IMAGES)
      .optional()
      .openapi({ description: 'Base64 images, within the JSON body cap' }),
  })
  .refine((b) => (b.texts?.length ?? 0) + (b.images?.length ?? 0) > 0, { message: 'give at least one text or image' })
  .openapi('EmbeddingsRequest');

const Vector = z.array(z.number());
const EmbeddingsResponse = z
  .object({
    model: z.string(),
    dim: z.number().int(),
    texts: z.array(Vector).openapi({ description: 'One L2-normalized vector per text, in order' }),
    images: z.array(Vector).openapi({ description: 'One L2-normalized vector per image, in order' }),
  })
  .openapi('EmbeddingsResponse');

export const route = createRoute({
  operationId: 'embeddings',
  tags: ['inference'],
  summary: 'Feature vectors for texts and images',
  description: `Up to ${MAX_TEXTS} texts and ${MAX_IMAGES} images a request, embedded in batches with the model's ITC (or CLIP) projection.`,
  method: 'post',
  path: '/v1/embeddings',
  middleware: [requireScope('read')] as const,
  request: { body: jsonBody(Body) },
  responses: {
    200: jsonContent(EmbeddingsResponse, 'The vectors'),
    ...errorResponses(400, 403, 413, 415, 422, 503),
  },
});
export type EmbeddingsResponseBody = typeof EmbeddingsResponse._output;

export function registerEmbeddings(app: App) {
  app.openapi(route, async (c) => {
    const body = c.req.valid('json');
    const model = await modelFor(c, body.model);
    const runtime = await c.var.ctx.runtime(model.id);
    const images = (body.images ?? []).map((b) => new Uint8Array(Buffer.from(b, 'base64')));
    const [texts, imageFeats] = await Promise.all([
      body.texts?.length ? runtime.embedTexts(body.texts) : Promise.resolve([]),
      images.length ? runtime.embedImages(images) : Promise.resolve([]),
    ]);
    return c.json({ model: model.id, dim: model.embedDim, texts: texts.map((v) => Array.from(v)), images: imageFeats.map((e) => Array.from(e.feat)) }, 200);
  });
}
