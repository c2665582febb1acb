import { createRoute, z } from '@hono/zod-openapi';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { CAPTION_METHODS } from '../../../inference/runtime.ts';
import { FileField } from '../images/upload.ts';
import { modelFor, requireGraph } from './schema.ts';

const num = (min: number, max: number, description: string) => z.coerce.number().min(min).max(max).optional().openapi({ type: 'number', description });
const int = (min: number, max: number, description: string) => z.coerce.number().int().min(min).max(max).optional().openapi({ type: 'integer', description });

const Form = z
  .strictObject({
    file: FileField,
    model: z.string().min(1).max(200).optional().openapi({ description: 'A BLIP model id; default: the active model' }),
    method: z.enum(CAPTION_METHODS).optional().openapi({
      description:
        "Default: the server's MIRA_CAPTION_METHOD, else the bundle's (beam when it sets numBeams > 1). `beam-itm`: beam search, then the numBeams best hypotheses are scored by the ITM head and the one with the highest ITM logit + length-normalised log-probability is kept (needs a model with an ITM graph)",
    }),
    numBeams: int(1, 8, 'Beams, for beam search (beam-itm: default 5)'),
    maxLength: int(1, 100, 'Most new tokens'),
    minLength: int(0, 100, 'Fewest new tokens'),
    repetitionPenalty: num(1, 3, 'Penalty on repeated tokens'),
    topP: num(0.01, 1, 'Nucleus mass, for nucleus sampling'),
    temperature: num(0.05, 5, 'Sampling temperature, for nucleus sampling'),
    seed: int(0, 2 ** 31 - 1, 'Random seed, for nucleus sampling (same seed, same caption)'),
    prompt: z.string().max(200).optional().openapi({ description: 'Text the caption starts with, e.g. "a picture of"' }),
  })
  .openapi('CaptionRequest');

const CaptionResponse = z
  .object({ caption: z.string(), model: z.string(), logProb: z.number().openapi({ description: 'Sum of the log-probabilities of the generated tokens' }) })
  .openapi('CaptionResponse');

export const route = createRoute({
  operationId: 'caption',
  tags: ['inference'],
  summary: 'Caption an uploaded image',
  method: 'post',
  path: '/v1/captions',
  middleware: [requireScope('read')] as const,
  request: { body: { required: true, content: { 'multipart/form-data': { schema: Form } } } },
  responses: {
    200: jsonContent(CaptionResponse, 'The caption'),
    ...errorResponses(400, 403, 413, 415, 422, 503),
  },
});
export type CaptionResponseBody = typeof CaptionResponse._output;

export function registerCaption(app: App) {
  app.openapi(route, async (c) => {
    const { file, model: modelId, ...options } = c.req.valid('form');
    const model = await modelFor(c, modelId, { graph: 'decoder', role: 'caption' });
    if (options.method === 'beam-itm') requireGraph(model, { graph: 'itm', role: 'check captions with ITM (method beam-itm)' });
    const runtime = await c.var.ctx.runtime(model.id);
    const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    const result = await runtime.caption(new Uint8Array(await file.arrayBuffer()), defined);
    return c.json({ caption: result.text, model: model.id, logProb: result.logProb }, 200);
  });
}
