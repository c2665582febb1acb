/**
 * Every error the API sends is RFC 9457 problem+json with a stable `code` and the request id. One
 * code enum, one code-to-status map, one `ApiError`, one validation hook and one `onError`.
 */
import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { Conflict, InvalidCursor, NotFound } from '../db/errors.ts';
import { isInferenceError } from '../inference/errors.ts';
import { classifyError, IngestError } from '../ingest/errors.ts';
import { QueueUnavailable } from '../jobs/bull.ts';
import { VersionError } from '../reextract/versions.ts';
import { SearchError } from '../search/limits.ts';
import type { ApiEnv } from './types.ts';

/** The API's own codes with their status. Ingest and inference codes come from classifyError. */
export const apiErrorCodes = {
  invalid_request: 400,
  malformed_json: 400,
  malformed_form: 400,
  invalid_cursor: 400,
  invalid_payload: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  reextraction_required: 409,
  reextraction_running: 409,
  version_active: 409,
  version_incomplete: 409,
  no_previous_version: 409,
  job_finished: 409,
  body_too_large: 413,
  unsupported_media_type: 415,
  unknown_model: 422,
  model_unsuitable: 422,
  unknown_collection: 422,
  bundle_invalid: 422,
  rate_limited: 429,
  internal: 500,
  queue_unavailable: 503,
  not_ready: 503,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ApiErrorCode = keyof typeof apiErrorCodes;

const titles: Record<ApiErrorCode, string> = {
  invalid_request: 'The request does not match the schema',
  malformed_json: 'The request body is not valid JSON',
  malformed_form: 'The multipart body cannot be parsed',
  invalid_cursor: 'The page cursor is not one this server returned',
  invalid_payload: 'The job payload does not match its schema',
  unauthorized: 'A valid API key is required',
  forbidden: 'The API key may not do this',
  not_found: 'Not found',
  method_not_allowed: 'Method not allowed',
  conflict: 'The request conflicts with the current state',
  reextraction_required: 'The change needs the collection re-extracted',
  reextraction_running: 'Another re-extraction of the collection is running',
  version_active: 'The version is the one the collection is searched by',
  version_incomplete: 'The version lacks embeddings of some images',
  no_previous_version: 'The collection has no previous version',
  job_finished: 'The job has already finished',
  body_too_large: 'The request body is too large',
  unsupported_media_type: 'Unsupported media type',
  unknown_model: 'No such model is registered',
  model_unsuitable: 'The model cannot serve this role',
  unknown_collection: 'No such collection',
  bundle_invalid: 'The model bundle is invalid',
  rate_limited: 'Too many requests',
  internal: 'Internal error',
  queue_unavailable: 'The job queue is unavailable',
  not_ready: 'The server is not ready',
};

export const problemType = (code: string): string => `https://mira.dev/problems/${code.replaceAll('_', '-')}`;

export class ApiError extends Error {
  readonly status: ContentfulStatusCode;
  constructor(
    readonly code: ApiErrorCode,
    detail: string,
    readonly options: { extensions?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(detail);
    this.status = apiErrorCodes[code];
  }
}

export const FieldError = z
  .object({
    location: z.enum(['body', 'query', 'path', 'header', 'form']).openapi({ description: 'Which part of the request' }),
    pointer: z.string().openapi({ description: 'JSON pointer to the field inside that part ("" for the whole)', example: '/name' }),
    message: z.string(),
  })
  .openapi('FieldError');

export const Problem = z
  .object({
    type: z.string().openapi({ example: 'https://mira.dev/problems/invalid-request' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().openapi({ description: 'The request path' }),
    code: z.string().openapi({ description: 'Stable machine-readable code', example: 'invalid_request' }),
    requestId: z.string(),
    errors: z.array(FieldError).optional().openapi({ description: 'Every failed field, for invalid_request' }),
    retryable: z.boolean().optional(),
  })
  .catchall(z.unknown())
  .openapi('Problem');
export type Problem = z.infer<typeof Problem>;

const descriptions: Record<number, string> = {
  400: 'The request is malformed or does not match the schema',
  401: 'Missing, malformed, unknown or revoked API key',
  403: 'The key lacks the scope, or the server refuses the source',
  404: 'Not found (or not visible to this key)',
  409: 'Conflicts with the current state',
  413: 'The body or image is too large',
  415: 'The body or image is of an unsupported type',
  422: 'Well-formed but unusable',
  429: 'Rate limit exceeded; see Retry-After',
  500: 'Internal error',
  502: 'A remote source failed',
  503: 'A dependency (queue, workers) is unavailable; retry later',
  504: 'A remote source timed out',
};

const retryAfter = { description: 'Seconds to wait before retrying', schema: { type: 'integer' as const, minimum: 1 } };

/** The problem+json responses of a route, for `createRoute({ responses: { ...errorResponses(400, 404) } })`. */
export function errorResponses<S extends number>(...statuses: S[]) {
  const all = [...new Set([...statuses, 401, 429, 500] as number[])].sort((a, b) => a - b) as (S | 401 | 429 | 500)[];
  return Object.fromEntries(
    all.map((s) => [
      s,
      {
        description: descriptions[s] ?? 'Error',
        ...(s === 429 || s === 503 ? { headers: { 'Retry-After': retryAfter } } : {}),
        content: { 'application/problem+json': { schema: Problem } },
      },
    ]),
  ) as Record<S | 401 | 429 | 500, { description: string; content: { 'application/problem+json': { schema: typeof Problem } } }>;
}

export function problemResponse(
  c: Context<ApiEnv>,
  p: { code: string; status: number; detail: string; extensions?: Record<string, unknown>; headers?: Record<string, string> },
): Response {
  const known = (titles as Record<string, string>)[p.code];
  const body = {
    ...p.extensions,
    type: problemType(p.code),
    title: known ?? p.code.replaceAll('_', ' '),
    status: p.status,
    detail: p.detail,
    instance: c.req.path,
    code: p.code,
    requestId: c.get('requestId') ?? '',
  };
  return c.body(JSON.stringify(body), p.status as ContentfulStatusCode, { ...p.headers, 'content-type': 'application/problem+json' });
}

type Issue = { path: PropertyKey[]; message: string; code?: string; keys?: string[] };
const locations = { json: 'body', query: 'query', param: 'path', header: 'header', form: 'form', cookie: 'header' } as const;
const pointer = (path: PropertyKey[]) => path.map((p) => `/${String(p).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');

/** Validation failures of any request part: 400 invalid_request naming each field. */
export function defaultHook(result: { success: boolean; target: string; error?: { issues: Issue[] } }, c: Context<ApiEnv>) {
  if (result.success || !result.error) return;
  const location = locations[result.target as keyof typeof locations] ?? 'body';
  const errors = result.error.issues.flatMap((i) =>
    i.code === 'unrecognized_keys' && i.keys
      ? i.keys.map((k) => ({ location, pointer: pointer([...i.path, k]), message: 'unknown field' }))
      : [{ location, pointer: pointer(i.path), message: i.message }],
  );
  const first = errors[0]!;
  const where = first.pointer ? `${location} ${first.pointer}` : location;
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
  return problemResponse(c, { code: 'invalid_request', status: 400, detail: `${where}: ${first.message}${more}`, extensions: { errors } });
}

/** Any error to its problem; unknown errors are logged with their stack and answered as `internal`. */
export function toProblem(err: unknown): { code: string; status: number; detail: string; extensions?: Record<string, unknown>; headers?: Record<string, string> } {
  if (err instanceof ApiError) return { code: err.code, status: err.status, detail: err.message, ...err.options };
  if (err instanceof NotFound) return { code: 'not_found', status: 404, detail: err.message };
  if (err instanceof Conflict) return { code: 'conflict', status: 409, detail: err.message };
  if (err instanceof InvalidCursor) return { code: 'invalid_cursor', status: 400, detail: err.message };
  if (err instanceof SearchError) return { code: err.code, status: err.status, detail: err.message };
  if (err instanceof VersionError) return { code: err.code, status: 409, detail: err.message, extensions: err.details };
  if (err instanceof QueueUnavailable) {
    return { code: 'queue_unavailable', status: 503, detail: 'The job queue is unavailable; try again shortly.', headers: { 'retry-after': '5' } };
  }
  if (err instanceof IngestError || isInferenceError(err)) {
    const c = classifyError(err);
    return { code: c.code, status: c.status, detail: c.status >= 500 && !c.retryable ? titles.internal : c.message, extensions: { retryable: c.retryable } };
  }
  if (err instanceof HTTPException) return fromHttpException(err);
  return { code: 'internal', status: 500, detail: 'Internal error.' };
}

function fromHttpException(err: HTTPException) {
  if (err.status === 400 && /malformed json/i.test(err.message)) return { code: 'malformed_json', status: 400, detail: 'The request body is not valid JSON.' };
  if (err.status === 400 && /malformed formdata/i.test(err.message)) return { code: 'malformed_form', status: 400, detail: 'The multipart body cannot be parsed.' };
  if (err.status === 413) return { code: 'body_too_large', status: 413, detail: 'The request body is too large.' };
  if (err.status === 415) return { code: 'unsupported_media_type', status: 415, detail: 'This operation does not accept that Content-Type.' };
  const code = (Object.keys(apiErrorCodes) as ApiErrorCode[]).find((k) => apiErrorCodes[k] === err.status) ?? (err.status >= 500 ? 'internal' : 'invalid_request');
  return { code, status: err.status, detail: err.status >= 500 ? 'Internal error.' : err.message || titles[code] };
}

export function onError(err: Error, c: Context<ApiEnv>): Response {
  const p = toProblem(err);
  if (p.status >= 500) c.get('log')?.error({ err, requestId: c.get('requestId'), code: p.code }, 'request failed');
  return problemResponse(c, p);
}
