import { createRoute, z } from '@hono/zod-openapi';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { IdParam, jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { visibleCollection } from '../collections/get.ts';
import { ingestOne } from './ingest.ts';
import { IngestResult, MetadataField, WaitQuery } from './schema.ts';

export const FileField = z
  .custom<File>((v) => v instanceof File, { message: 'must be a file part' })
  .openapi({ type: 'string', format: 'binary', description: 'The image (JPEG, PNG, WebP, GIF, AVIF, TIFF…)' });

const Form = z
  .strictObject({ file: FileField, metadata: MetadataField.optional() })
  .openapi('ImageUpload');

export const route = createRoute({
  operationId: 'uploadImage',
  tags: ['images'],
  summary: 'Upload an image into a collection',
  description:
    'Stores the image durably and queues its extraction (202). The same bytes again return the existing image. ' +
    'With wait=true the answer waits (up to 30 s) for extraction and is 200 once the image is ready or failed.',
  method: 'post',
  path: '/v1/collections/{id}/images',
  middleware: [requireScope('write')] as const,
  request: {
    params: IdParam,
    query: WaitQuery,
    body: { required: true, content: { 'multipart/form-data': { schema: Form } } },
  },
  responses: {
    200: jsonContent(IngestResult, 'The image is ready (or failed): it was already there, or wait=true saw it through'),
    202: jsonContent(IngestResult, 'Stored; extraction is queued'),
    ...errorResponses(400, 403, 404, 413, 415, 422, 503),
  },
});
export type UploadImageResponse = IngestResult;

export function registerUploadImage(app: App) {
  app.openapi(route, async (c) => {
    const collection = await visibleCollection(c, c.req.valid('param').id);
    const { file, metadata } = c.req.valid('form');
    const bytes = new Uint8Array(await file.arrayBuffer());
    const { body, status } = await ingestOne(c, collection, { kind: 'upload', bytes, filename: file.name, ...(metadata ? { metadata } : {}) }, c.req.valid('query').wait);
    return c.json(body, status);
  });
}
