import { createRoute } from '@hono/zod-openapi';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonBody, jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { runSearch } from './run.ts';
import { SearchRequest, SearchResponse } from './schema.ts';

export const route = createRoute({
  operationId: 'search',
  tags: ['search'],
  summary: 'Search a collection by text, by an image in it, or by a query image',
  description:
    'Give exactly one of `text`, `imageId` or `image` (base64, within the JSON body cap; larger images go to /v1/search/upload). ' +
    'Text queries are re-ranked by default when the collection has a reranker: score = ITM logit + ITC cosine (BLIP), plus the decoder\'s log-likelihood of the query where the reranker allows (`rerank.rule`).',
  method: 'post',
  path: '/v1/search',
  middleware: [requireScope('read')] as const,
  request: { body: jsonBody(SearchRequest) },
  responses: {
    200: jsonContent(SearchResponse, 'The best k results, best first'),
    ...errorResponses(400, 403, 404, 409, 413, 415, 422, 503),
  },
});
export type SearchResponseBody = SearchResponse;

export function registerSearch(app: App) {
  app.openapi(route, async (c) => {
    const body = c.req.valid('json');
    const query = body.text !== undefined ? { text: body.text } : body.imageId !== undefined ? { imageId: body.imageId } : { image: new Uint8Array(Buffer.from(body.image!, 'base64')) };
    return c.json(await runSearch(c, body, query), 200);
  });
}
