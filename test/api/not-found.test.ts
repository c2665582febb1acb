import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { notFound } from '../../src/api/middleware/not-found.ts';
import type { ApiEnv } from '../../src/api/types.ts';

/** A bare app with the real 404/405 handler: the route table alone decides 404 against 405. */
function app() {
  const a = new Hono<ApiEnv>();
  a.get('/files/:name{[a-z]+\\.js}', (c) => c.text('js'));
  a.post('/items/:id', (c) => c.text('ok'));
  a.get('/any/*', (c) => c.text('any'));
  a.notFound(notFound(a));
  return a;
}

describe('404 or 405', () => {
  it("a parameter's regexp constraint is honored: a path it rejects is 404, not 405", async () => {
    const a = app();
    expect((await a.request('/files/app.js')).status).toBe(200);
    const png = await a.request('/files/image.png');
    expect(png.status).toBe(404);
    expect((await png.json()).code).toBe('not_found');
    const post = await a.request('/files/app.js', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD, OPTIONS');
  });

  it('plain parameters and wildcards match one segment and any rest', async () => {
    const a = app();
    expect((await a.request('/items/42')).status).toBe(405);
    expect((await a.request('/items/42/more')).status).toBe(404);
    expect((await a.request('/any/deep/path', { method: 'DELETE' })).status).toBe(405);
  });
});
