import { createRoute, z } from '@hono/zod-openapi';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { FileField } from '../images/upload.ts';
import { runSearch } from './run.ts';
import { SearchParams, SearchResponse } from './schema.ts';

/** A multipart text field holding the JSON SearchParams; its issues keep their paths under /params. */
const ParamsField = z
  .string()
  .max(64 * 1024)
  .transform((s, ctx) => {
    let json: unknown;
    try {
      json = JSON.parse(s);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object' });
      return z.NEVER;
    }
    const parsed = SearchParams.safeParse(json);
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', path: issue.path as (string | number)[], message: issue.message });
    return z.NEVER;
  })
  .openapi({ type: 'string', description: 'SearchParams as JSON, e.g. {"collectionId": "…", "k": 10}' });

const Form = z.strictObject({ file: FileField, params: ParamsField }).openapi('SearchUpload');

export const route = createRoute({
  operationId: 'searchByUpload',
  tags: ['search'],
  summary: 'Search a collection with an uploaded query image',
  method: 'post',
  path: '/v1/search/upload',
  middleware: [requireScope('read')] as const,
  request: { body: { required: true, content: { 'multipart/form-data': { schema: Form } } } },
  responses: {
    200: jsonContent(SearchResponse, 'The best k results, best first'),
    ...errorResponses(400, 403, 404, 413, 415, 422, 503),
  },
});
export type SearchByUploadResponse = SearchResponse;

export function registerSearchByUpload(app: App) {
  app.openapi(route, async (c) => {
    const { file, params } = c.req.valid('form');
    return c.json(await runSearch(c, params, { image: new Uint8Array(await file.arrayBuffer()) }), 200);
  });
}
