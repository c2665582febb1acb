import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Context } from 'hono';
import { ROOT } from '../config.ts';
import { problemResponse } from './errors.ts';
import type { ApiEnv, App } from './types.ts';

/** The web UI: plain HTML, CSS and ES modules from src/web, served as they are (no build step). */
export const WEB_DIR = join(ROOT, 'src/web');

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * What the page may do: its own scripts and styles only, no inline code, requests to this origin;
 * images from here, or blob: (thumbnails fetched with the API key, previews of a chosen file).
 */
export const WEB_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  body: Uint8Array<ArrayBuffer>;
  type: string;
  etag: string;
}

/** Every servable file of src/web, by name, read once: the folder is part of the release. */
async function loadAssets(): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  for (const name of await readdir(WEB_DIR)) {
    const type = types[extname(name)];
    if (!type) continue;
    const body = new Uint8Array(await readFile(join(WEB_DIR, name)));
    assets.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return assets;
}

/**
 * GET / (the page) and GET /web/<file>. The names carry no version, so browsers revalidate every
 * time (no-cache) and get a 304 while the ETag holds.
 */
export function registerWeb(app: App) {
  let assets: Promise<Map<string, Asset>> | undefined;
  const serve = async (c: Context<ApiEnv>, name: string) => {
    const asset = (await (assets ??= loadAssets())).get(name);
    if (!asset) return problemResponse(c, { code: 'not_found', status: 404, detail: `No ${c.req.path} in the web UI.` });
    const headers = {
      'cache-control': 'no-cache',
      etag: asset.etag,
      'content-security-policy': WEB_CSP,
      'referrer-policy': 'no-referrer',
    };
    if (c.req.header('if-none-match') === asset.etag) return c.body(null, 304, headers);
    return c.body(asset.body, 200, { ...headers, 'content-type': asset.type });
  };
  app.get('/', (c) => serve(c, 'index.html'));
  // Only names read from src/web are found, so no path can leave it; the page lives at / alone.
  app.get('/web/:file', (c) => serve(c, c.req.param('file').endsWith('.html') ? '' : c.req.param('file')));
}
