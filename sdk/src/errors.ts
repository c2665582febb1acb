import type { components } from './schema.ts';

export type Problem = components['schemas']['Problem'];

/** A non-2xx answer, with its RFC 9457 problem: `code` is stable, `requestId` finds the server's log line. */
export class MiraApiError extends Error {
  override readonly name = 'MiraApiError';
  readonly status: number;
  readonly code: string;
  readonly requestId: string;
  readonly problem: Problem;
  /** Response headers, e.g. Retry-After on 429 and 503. */
  readonly headers: Headers;

  constructor(problem: Problem, headers: Headers) {
    super(`${problem.status} ${problem.code}: ${problem.detail}`);
    this.problem = problem;
    this.status = problem.status;
    this.code = problem.code;
    this.requestId = problem.requestId;
    this.headers = headers;
  }

  /** Seconds to wait before retrying, when the server said. */
  get retryAfter(): number | undefined {
    const v = Number(this.headers.get('retry-after'));
    return Number.isFinite(v) && v > 0 ? v : undefined;
  }

  static async from(response: Response): Promise<MiraApiError> {
    const type = response.headers.get('content-type') ?? '';
    let body: unknown;
    if (/json/i.test(type)) body = await response.clone().json().catch(() => undefined);
    const p = body && typeof body === 'object' && 'code' in body ? (body as Problem) : undefined;
    const problem: Problem = p ?? {
      type: 'about:blank',
      title: response.statusText || `HTTP ${response.status}`,
      status: response.status,
      detail: `HTTP ${response.status} without a problem body`,
      instance: new URL(response.url || 'http://unknown/').pathname,
      code: `http_${response.status}`,
      requestId: response.headers.get('x-request-id') ?? '',
    };
    return new MiraApiError(problem, response.headers);
  }
}
