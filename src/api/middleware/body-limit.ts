import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { ApiError } from '../errors.ts';
import type { ApiEnv } from '../types.ts';

/** Slack over the image cap for the multipart envelope and the metadata field. */
const MULTIPART_OVERHEAD = 1024 * 1024;

/**
 * Caps request bodies: multipart uploads at the image byte cap plus the envelope, everything else
 * at the JSON cap. A declared Content-Length over the cap is refused before reading; a chunked
 * body is counted as it streams and refused once it passes the cap.
 */
export function bodyLimits(opts: { jsonBytes: number; uploadBytes: number }): MiddlewareHandler<ApiEnv> {
  const tooLarge = (limit: number) => () => {
    // The rest of the body is never read, so the connection cannot carry another request.
    throw new ApiError('body_too_large', `The request body is larger than ${limit} bytes.`, { extensions: { limit }, headers: { connection: 'close' } });
  };
  const upload = opts.uploadBytes + MULTIPART_OVERHEAD;
  const forUpload = bodyLimit({ maxSize: upload, onError: tooLarge(upload) });
  const forJson = bodyLimit({ maxSize: opts.jsonBytes, onError: tooLarge(opts.jsonBytes) });
  return (c, next) => {
    const type = c.req.header('content-type')?.toLowerCase() ?? '';
    return type.startsWith('multipart/form-data') ? forUpload(c, next) : forJson(c, next);
  };
}
