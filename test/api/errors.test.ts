import { describe, expect, it } from 'vitest';
import { MiraApiError, type Problem } from '../../sdk/src/index.ts';
import { problemOf, unique, useServer } from './server.ts';

const JSON_LIMIT = 64 * 1024;
const server = useServer({ MIRA_MAX_JSON_BYTES: String(JSON_LIMIT) });

/** A raw request with the admin key, for bodies the SDK would never send; answers its problem. */
async function raw(path: string, init: RequestInit & { duplex?: 'half' } = {}): Promise<{ response: Response; problem: Problem }> {
  const { url, admin } = server();
  const auth = (admin as unknown as { headers: Record<string, string> }).headers.authorization!;
  const response = await fetch(`${url}${path}`, { ...init, headers: { authorization: auth, ...init.headers } });
  const err = await MiraApiError.from(response);
  return { response, problem: err.problem };
}

function expectProblem(response: Response, problem: Problem, status: number, code: string) {
  const shown = JSON.stringify(problem);
  expect(response.status, shown).toBe(status);
  expect(response.headers.get('content-type'), shown).toMatch(/^application\/problem\+json/);
  expect(problem, shown).toMatchObject({ status, code, type: `https://mira.dev/problems/${code.replaceAll('_', '-')}` });
  expect(problem.title, shown).toBeTypeOf('string');
  expect(problem.detail, shown).toBeTypeOf('string');
  expect(problem.instance, shown).toBe(new URL(response.url).pathname);
  expect(problem.requestId, shown).toBe(response.headers.get('x-request-id'));
  expect(shown, 'no stack trace').not.toMatch(/\n\s+at |\.ts:\d+/);
}

describe('problem+json for bad requests', () => {
  it('malformed JSON is 400 malformed_json', async () => {
    const { response, problem } = await raw('/v1/collections', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name": "x",' });
    expectProblem(response, problem, 400, 'malformed_json');
  });

  it('a field of the wrong type is 400 invalid_request naming the field', async () => {
    const err = await problemOf(server().admin.api.POST('/v1/collections', { body: { name: 42 as unknown as string } }));
    expect(err.status, JSON.stringify(err.problem)).toBe(400);
    expect(err.code).toBe('invalid_request');
    expect(err.problem.detail).toMatch(/^body \/name: /);
    expect(err.problem.errors).toEqual([expect.objectContaining({ location: 'body', pointer: '/name' })]);
  });

  it('an unknown field is 400 invalid_request naming it, nested ones included', async () => {
    const body = { name: unique('c'), colour: 'red', hnsw: { m: 16, bogus: 1 } } as never;
    const err = await problemOf(server().admin.api.POST('/v1/collections', { body }));
    expect(err.code, JSON.stringify(err.problem)).toBe('invalid_request');
    const pointers = err.problem.errors?.map((e) => e.pointer).sort();
    expect(pointers, JSON.stringify(err.problem)).toEqual(['/colour', '/hnsw/bogus']);
  });

  it('a body over the cap with Content-Length is 413 body_too_large, unread', async () => {
    const body = JSON.stringify({ name: 'x'.repeat(JSON_LIMIT + 10) });
    const { response, problem } = await raw('/v1/collections', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expectProblem(response, problem, 413, 'body_too_large');
    expect(problem.limit).toBe(JSON_LIMIT);
  });

  it('a chunked body (no Content-Length) over the cap is 413 body_too_large', async () => {
    const chunk = new TextEncoder().encode('x'.repeat(8 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > JSON_LIMIT * 4) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const { response, problem } = await raw('/v1/collections', { method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half' });
    expectProblem(response, problem, 413, 'body_too_large');
  });

  it('a chunked body under the cap is read and validated', async () => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"name": '));
        controller.enqueue(new TextEncoder().encode('7}'));
        controller.close();
      },
    });
    const { response, problem } = await raw('/v1/collections', { method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half' });
    expectProblem(response, problem, 400, 'invalid_request');
  });

  it('a page size over the cap is 400 invalid_request naming limit', async () => {
    const err = await problemOf(server().admin.api.GET('/v1/jobs', { params: { query: { limit: 1_000_000 } } }));
    expect(err.code, JSON.stringify(err.problem)).toBe('invalid_request');
    expect(err.problem.errors?.[0]).toMatchObject({ location: 'query', pointer: '/limit' });
  });

  it('a cursor the server did not make is 400 invalid_cursor', async () => {
    const err = await problemOf(server().admin.api.GET('/v1/jobs', { params: { query: { cursor: 'bm90LWEtY3Vyc29y' } } }));
    expect(err.code, JSON.stringify(err.problem)).toBe('invalid_cursor');
  });

  it('a JSON route given another content type is 415 unsupported_media_type', async () => {
    const { response, problem } = await raw('/v1/collections', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'name=x' });
    expectProblem(response, problem, 415, 'unsupported_media_type');
  });

  it('an unknown route is 404 and a known one with the wrong method is 405 with Allow', async () => {
    const missing = await raw('/v1/nothing-here');
    expectProblem(missing.response, missing.problem, 404, 'not_found');
    const wrong = await raw('/v1/collections', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' });
    expectProblem(wrong.response, wrong.problem, 405, 'method_not_allowed');
    expect(wrong.response.headers.get('allow')).toBe('GET, HEAD, OPTIONS, POST');
  });
});

describe('request ids', () => {
  it('a safe X-Request-Id is echoed, in the header and the problem', async () => {
    const { response, problem } = await raw('/v1/nothing', { headers: { 'x-request-id': 'client-id_1.2' } });
    expect(response.headers.get('x-request-id')).toBe('client-id_1.2');
    expect(problem.requestId).toBe('client-id_1.2');
  });

  it('an unsafe or oversized X-Request-Id is replaced by a generated one', async () => {
    for (const given of ['evil\tid', 'a'.repeat(65), '<script>', 'id with spaces']) {
      const { response } = await raw('/healthz', { headers: { 'x-request-id': given } });
      const echoed = response.headers.get('x-request-id');
      expect(echoed, given).not.toBe(given);
      expect(echoed, given).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe('CORS', () => {
  it('is off by default: no Access-Control headers, even on a preflight', async () => {
    const { url } = server();
    const get = await fetch(`${url}/healthz`, { headers: { origin: 'https://evil.example' } });
    expect(get.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await fetch(`${url}/v1/collections`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(preflight.headers.get('access-control-allow-methods')).toBeNull();
  });
});

describe('service endpoints', () => {
  it('serve health, readiness, metrics, the spec and the docs page without a key', async () => {
    const { url } = server();
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('mira_http_request_duration_seconds_bucket{');
    const spec = (await (await fetch(`${url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(spec.openapi).toBe('3.1.0');
    expect(Object.keys(spec.paths)).toContain('/v1/collections/{id}');
    const docs = await fetch(`${url}/docs`);
    const html = await docs.text();
    expect(html).not.toMatch(/https?:\/\//);
    for (const asset of html.matchAll(/(?:src|href)="([^"]+)"/g)) {
      const res = await fetch(`${url}${asset[1]}`);
      expect(res.status, asset[1]).toBe(200);
    }
  });
});
