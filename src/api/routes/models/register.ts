import { resolve } from 'node:path';
import { createRoute } from '@hono/zod-openapi';
import { isInferenceError } from '../../../inference/errors.ts';
import { registerBundle } from '../../../models/registry.ts';
import { ApiError, errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonBody, jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { Model, RegisterModel, toModel } from './schema.ts';

export const route = createRoute({
  operationId: 'registerModel',
  tags: ['models'],
  summary: 'Register a model bundle from a folder on the server',
  description:
    'Reads and checks the manifest and checksums the bundle. The same bytes again return the existing model (200); ' +
    'changed bytes under a registered name@version are refused (409): give the bundle a new version.',
  method: 'post',
  path: '/v1/models',
  middleware: [requireScope('admin', { allCollections: true })] as const,
  request: { body: jsonBody(RegisterModel) },
  responses: {
    201: jsonContent(Model, 'Registered'),
    200: jsonContent(Model, 'Already registered with the same checksum'),
    ...errorResponses(400, 403, 409, 413, 415, 422),
  },
});
export type RegisterModelResponse = Model;

export function registerRegisterModel(app: App) {
  app.openapi(route, async (c) => {
    const path = resolve(c.req.valid('json').path);
    let registered;
    try {
      registered = await registerBundle(c.var.ctx.db, path);
    } catch (err) {
      // The caller named the folder, so a bad bundle is their input, not a server fault.
      if (isInferenceError(err, 'bundle_invalid')) throw new ApiError('bundle_invalid', err.message);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ApiError('bundle_invalid', `${path}: a file the manifest names is missing.`);
      throw err;
    }
    const { model, created } = registered;
    return created ? c.json(toModel(model), 201) : c.json(toModel(model), 200);
  });
}
