import { createRoute, z } from '@hono/zod-openapi';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { FileField } from '../images/upload.ts';
import { modelFor } from './schema.ts';

export const MAX_LABELS = 100;

const LabelsField = z
  .string()
  .max(64 * 1024)
  .transform((s, ctx) => {
    let v: unknown;
    try {
      v = JSON.parse(s);
    } catch {
      // reported below
    }
    const parsed = z.array(z.string().min(1).max(200)).min(2).max(MAX_LABELS).safeParse(v);
    if (parsed.success) return parsed.data;
    ctx.addIssue({ code: 'custom', message: `must be a JSON array of 2 to ${MAX_LABELS} non-empty strings` });
    return z.NEVER;
  })
  .openapi({ type: 'string', description: 'JSON array of labels, e.g. ["a cat", "a dog"]' });

const Form = z
  .strictObject({
    file: FileField,
    labels: LabelsField,
    model: z.string().min(1).max(200).optional().openapi({ description: 'Default: the active model' }),
  })
  .openapi('ClassifyRequest');

const ClassifyResponse = z
  .object({
    model: z.string(),
    labels: z.array(z.object({ label: z.string(), score: z.number().openapi({ description: 'Softmax over the labels' }) })),
  })
  .openapi('ClassifyResponse');

export const route = createRoute({
  operationId: 'classify',
  tags: ['inference'],
  summary: 'Zero-shot classification of an uploaded image over given labels',
  description: "Each label is put in the bundle's prompt template and compared with the image (ITC); scores sum to 1, best first.",
  method: 'post',
  path: '/v1/classify',
  middleware: [requireScope('read')] as const,
  request: { body: { required: true, content: { 'multipart/form-data': { schema: Form } } } },
  responses: {
    200: jsonContent(ClassifyResponse, 'Labels with scores, best first'),
    ...errorResponses(400, 403, 413, 415, 422, 503),
  },
});
export type ClassifyResponseBody = typeof ClassifyResponse._output;

export function registerClassify(app: App) {
  app.openapi(route, async (c) => {
    const { file, labels, model: modelId } = c.req.valid('form');
    const model = await modelFor(c, modelId);
    const runtime = await c.var.ctx.runtime(model.id);
    const scored = await runtime.classify(new Uint8Array(await file.arrayBuffer()), labels);
    return c.json({ model: model.id, labels: scored }, 200);
  });
}
