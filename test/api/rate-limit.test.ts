import { describe, expect, it } from 'vitest';
import { MiraClient } from '../../sdk/src/index.ts';
import { problemOf, useServer } from './server.ts';

const LIMIT = 3;
const server = useServer({ MIRA_RATE_LIMIT_PER_MIN: String(LIMIT) });

describe(`rate limits (${server.mode} mode: ${server.mode === 'service' ? 'Redis' : 'memory'})`, () => {
  it('a key over its limit gets 429 problem+json with Retry-After; another key is unaffected', async () => {
    const { client } = server();
    const busy = await client(['read']);
    for (let i = 0; i < LIMIT; i++) await MiraClient.data(busy.api.GET('/v1/collections'));
    const err = await problemOf(busy.api.GET('/v1/collections'));
    expect(err.status, JSON.stringify(err.problem)).toBe(429);
    expect(err.code).toBe('rate_limited');
    expect(err.retryAfter, 'Retry-After in seconds').toBeGreaterThan(0);
    expect(err.retryAfter).toBeLessThanOrEqual(60);
    expect(err.headers.get('ratelimit-remaining')).toBe('0');

    const calm = await client(['read']);
    const { response } = await calm.api.GET('/v1/collections');
    expect(response.status).toBe(200);
    expect(response.headers.get('ratelimit-limit')).toBe(String(LIMIT));
    expect(response.headers.get('ratelimit-remaining')).toBe(String(LIMIT - 1));
  });

  it('service endpoints are not limited', async () => {
    const { url } = server();
    for (let i = 0; i < LIMIT + 2; i++) expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });
});
