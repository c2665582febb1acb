import type { App } from './types.ts';

/** The OpenAPI 3.1 document of the routes registered on `app`: served at /openapi.json, written to openapi.yaml. */
export function openApiDocument(app: App) {
  app.openAPIRegistry.registerComponent('securitySchemes', 'apiKey', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'mira_<prefix>_<secret>',
    description: 'An API key from `mira keys create` or POST /v1/keys.',
  });
  const doc = app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'Mira',
      version: '1.0.0',
      description:
        'Multimodal vector search: collections of images searched by text or image, re-ranked with BLIP ITM. ' +
        'Errors are RFC 9457 problem+json with a stable `code` and the request id.',
    },
    servers: [{ url: 'http://127.0.0.1:8080', description: 'A local server (mira serve)' }],
    security: [{ apiKey: [] }],
    tags: [
      { name: 'collections', description: 'Sets of images searched together, each with its embedder model' },
      { name: 'images', description: 'Ingestion, metadata and downloads' },
      { name: 'search', description: 'Text, image and image-id queries, re-ranked with ITM' },
      { name: 'inference', description: 'Captions, zero-shot classification and embeddings, outside any collection' },
      { name: 'models', description: 'Registered model bundles' },
      { name: 'jobs', description: 'Background work: ingestion, extraction' },
      { name: 'keys', description: 'API keys (admin)' },
      { name: 'service', description: 'Health and readiness' },
    ],
  });
  return doc;
}
