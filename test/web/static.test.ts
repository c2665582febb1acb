import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WEB_CSP, WEB_DIR } from '../../src/api/web.ts';
import { useServer } from '../api/server.ts';

const server = useServer();

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${server().url}${path}`, { headers });

describe('the web UI files', () => {
  it('GET / is the page, with its CSP, no-cache and an ETag, and needs no API key', async () => {
    const res = await get('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toBe(WEB_CSP);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.text()).toBe(await readFile(join(WEB_DIR, 'index.html'), 'utf8'));
  });

  it('serves every module and stylesheet the page loads with its own content type', async () => {
    const html = await readFile(join(WEB_DIR, 'index.html'), 'utf8');
    const app = await readFile(join(WEB_DIR, 'app.js'), 'utf8');
    const linked = [...html.matchAll(/(?:src|href)="(\/web\/[^"]+)"/g)].map((m) => m[1]!);
    const imported = [...app.matchAll(/from '\.\/([^']+)'/g)].map((m) => `/web/${m[1]}`);
    expect(linked).toEqual(['/web/style.css', '/web/app.js']);
    for (const path of [...linked, ...imported]) {
      const res = await get(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toBe(path.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8');
    }
  });

  it('answers 304 while the ETag holds', async () => {
    const first = await get('/web/app.js');
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^"[\w-]{22}"$/);
    const again = await get('/web/app.js', { 'if-none-match': etag! });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
  });

  it('serves nothing else from the disk: unknown names and paths outside src/web are 404', async () => {
    for (const path of ['/web/nope.js', '/web/index.html', '/web/..%2F..%2Fpackage.json', '/web/../package.json', '/web/api.ts']) {
      const res = await get(path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type'), path).toMatch(/^application\/problem\+json/);
    }
  });
});
