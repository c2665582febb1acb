import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyError } from '../../src/ingest/errors.ts';
import { emptyAllowlist, parseAllowlist } from '../../src/ingest/ip.ts';
import { fetchUrl, type FetchOptions, type RequestFn, type Resolver } from '../../src/ingest/url.ts';
import { startHttpServer, startRawServer, type TestServer } from './servers.ts';

let image: Buffer;
let srv: TestServer;
let base: string;

beforeAll(async () => {
  image = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#3366cc' } }).jpeg().toBuffer();
  srv = await startHttpServer(image);
  base = `http://127.0.0.1:${srv.port}`;
});
afterAll(() => srv.close());

/** A resolver that never touches DNS: every name is `address`. */
const fixed = (address: string, family = 4): Resolver => async () => [{ address, family }];

const opts = (over: Partial<FetchOptions> = {}): FetchOptions => ({
  maxBytes: 1024 * 1024,
  fetchTimeoutMs: 5000,
  maxRedirects: 3,
  allowlist: emptyAllowlist,
  resolve: fixed('127.0.0.1'),
  ...over,
});
const loopbackAllowed = (over: Partial<FetchOptions> = {}) => opts({ allowlist: parseAllowlist('127.0.0.1'), ...over });

async function codeOf(url: string, o: FetchOptions): Promise<string> {
  try {
    await fetchUrl(url, o);
    return 'ok';
  } catch (e) {
    return classifyError(e).code;
  }
}

/** Runs `fn` and returns the requests the server received meanwhile. */
async function hitsDuring(s: TestServer, fn: () => Promise<unknown>): Promise<string[]> {
  const before = s.hits.length;
  await fn();
  return s.hits.slice(before);
}

describe('URL form', () => {
  it('refuses schemes other than http(s), credentials and non-URLs before any lookup', async () => {
    let lookups = 0;
    const o = opts({ resolve: async () => (lookups++, [{ address: '127.0.0.1', family: 4 }]) });
    for (const u of ['file:///etc/passwd', 'ftp://127.0.0.1/x', 'gopher://127.0.0.1:70/', 'data:image/png;base64,AAAA', 'javascript:alert(1)', 'dict://127.0.0.1:11211/']) {
      expect(await codeOf(u, o), u).toBe('url_scheme_refused');
    }
    expect(await codeOf(`http://user:pw@127.0.0.1:${srv.port}/img.jpg`, o)).toBe('url_invalid');
    expect(await codeOf('not a url', o)).toBe('url_invalid');
    expect(lookups).toBe(0);
  });
});

describe('SSRF: refused addresses', () => {
  it('refuses loopback in every spelling, and no request reaches the server', async () => {
    const p = srv.port;
    const urls = [
      `http://127.0.0.1:${p}/img.jpg`, `http://2130706433:${p}/img.jpg`, `http://0177.0.0.1:${p}/img.jpg`, `http://0x7f.1:${p}/img.jpg`,
      `http://127.1:${p}/img.jpg`, `http://0x7f000001:${p}/img.jpg`, `http://017700000001:${p}/img.jpg`, `http://[::ffff:127.0.0.1]:${p}/img.jpg`,
      `http://[::ffff:7f00:1]:${p}/img.jpg`, `http://[::1]:${p}/img.jpg`, `http://0:${p}/img.jpg`, `http://0.0.0.0:${p}/img.jpg`,
      `http://localhost:${p}/img.jpg`, `http://LOCALHOST.:${p}/img.jpg`, `http://127.0.0.1.nip.io:${p}/img.jpg`,
    ];
    const hits = await hitsDuring(srv, async () => {
      for (const u of urls) expect(await codeOf(u, opts()), u).toBe('address_refused');
    });
    expect(hits).toEqual([]);
  });

  it('refuses names that resolve to private, metadata, CGNAT or IPv6-local addresses, or to a mix of public and private', async () => {
    for (const [address, family] of [['10.1.2.3', 4], ['169.254.169.254', 4], ['100.64.0.1', 4], ['192.168.0.10', 4], ['fd00::1', 6], ['fe80::1', 6], ['::ffff:10.0.0.1', 6]] as const) {
      expect(await codeOf('http://images.test/x.jpg', opts({ resolve: fixed(address, family) })), address).toBe('address_refused');
    }
    const mixed: Resolver = async () => [{ address: '93.184.216.34', family: 4 }, { address: '127.0.0.1', family: 4 }];
    expect(await codeOf('http://images.test/x.jpg', opts({ resolve: mixed }))).toBe('address_refused');
  });

  it('names the URL and the kind of address in a one-line message, without the resolved address', async () => {
    const err = await fetchUrl('http://images.test/x.jpg', opts({ resolve: fixed('169.254.169.254') })).catch((e: unknown) => e);
    expect(classifyError(err)).toMatchObject({ code: 'address_refused', status: 403, retryable: false });
    expect((err as Error).message).toMatch(/^http:\/\/images\.test\/x\.jpg resolves to a link-local/);
    expect((err as Error).message).not.toMatch(/169\.254|\n/);
  });

  it('a resolver that never answers hits the time cap', async () => {
    const never: Resolver = () => new Promise(() => {});
    const err = await fetchUrl('http://images.test/x.jpg', opts({ resolve: never, fetchTimeoutMs: 200 })).catch((e: unknown) => e);
    expect(classifyError(err)).toMatchObject({ code: 'fetch_timeout', retryable: true });
  });

  it('a DNS failure is fetch_failed and retryable', async () => {
    const failing: Resolver = async () => Promise.reject(Object.assign(new Error('getaddrinfo EAI_AGAIN'), { code: 'EAI_AGAIN' }));
    const err = await fetchUrl('http://images.test/x.jpg', opts({ resolve: failing })).catch((e: unknown) => e);
    expect(classifyError(err)).toMatchObject({ code: 'fetch_failed', retryable: true });
  });
});

describe('pinning', () => {
  it('connects to the address it checked, not to what a second lookup answers (DNS rebinding)', async () => {
    // First answer public, every later one loopback. A fake transport records where the socket
    // would connect (by calling the lookup it was given) and never opens one.
    const answers: string[] = [];
    const rebinding: Resolver = async () => {
      const address = answers.length === 0 ? '93.184.216.34' : '127.0.0.1';
      answers.push(address);
      return [{ address, family: 4 }];
    };
    const seen: Array<{ hostname?: string | null; all: unknown; one: unknown }> = [];
    const request: RequestFn = (options) => {
      const lookup = options.lookup!;
      let all: unknown;
      let one: unknown;
      lookup(options.hostname!, { all: true }, (_e, addrs) => (all = addrs));
      lookup(options.hostname!, {}, (_e, address, family) => (one = [address, family]));
      seen.push({ hostname: options.hostname, all, one });
      const req = new EventEmitter() as http.ClientRequest;
      req.end = (() => {
        setImmediate(() => req.emit('error', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })));
        return req;
      }) as never;
      return req;
    };
    const code = await codeOf('http://rebind.test/x.jpg', opts({ resolve: rebinding, request }));
    expect(code).toBe('fetch_failed');
    expect(answers).toEqual(['93.184.216.34']);
    expect(seen).toEqual([{ hostname: 'rebind.test', all: [{ address: '93.184.216.34', family: 4 }], one: ['93.184.216.34', 4] }]);
  });

  it('over a real socket: the pinned (allowlisted) address is used and the later answer never is', async () => {
    // If the socket looked the name up again it would get 10.0.0.1 from this resolver — or, with the
    // system resolver, fail on the reserved .test name; either way no request would arrive here.
    let calls = 0;
    const resolve: Resolver = async () => [{ address: calls++ === 0 ? '127.0.0.1' : '10.0.0.1', family: 4 }];
    const got = await fetchUrl(`http://rebind.test:${srv.port}/img.jpg`, loopbackAllowed({ resolve }));
    expect(got.bytes.equals(image)).toBe(true);
    expect(calls).toBe(1);
    expect(srv.hosts.at(-1), 'the Host header keeps the name').toBe(`rebind.test:${srv.port}`);
  });
});

describe('allowlisted loopback: the happy path and its limits', () => {
  it('fetches an allowlisted address, by literal and by allowlisted host name', async () => {
    const got = await fetchUrl(`${base}/img.jpg`, loopbackAllowed());
    expect(got).toMatchObject({ finalUrl: `${base}/img.jpg`, contentType: 'image/jpeg' });
    expect(got.bytes.equals(image)).toBe(true);
    const byName = await fetchUrl(`http://images.test:${srv.port}/img.jpg`, opts({ allowlist: parseAllowlist('images.test') }));
    expect(byName.bytes.equals(image)).toBe(true);
  });

  it('follows redirects, re-checking each one, up to the cap', async () => {
    expect((await fetchUrl(`${base}/redirect`, loopbackAllowed())).finalUrl).toBe(`${base}/img.jpg`);
    expect(await codeOf(`${base}/chain/2`, loopbackAllowed())).toBe('ok'); // 3 redirects
    expect(await codeOf(`${base}/chain/3`, loopbackAllowed())).toBe('too_many_redirects');
    expect(await codeOf(`${base}/loop`, loopbackAllowed())).toBe('too_many_redirects');
    expect(await codeOf(`${base}/redirect`, loopbackAllowed({ maxRedirects: 0 }))).toBe('too_many_redirects');
  });

  it('refuses a redirect to a refused address or scheme', async () => {
    expect(await codeOf(`${base}/to-metadata`, loopbackAllowed())).toBe('address_refused');
    expect(await codeOf(`${base}/to-file`, loopbackAllowed())).toBe('url_scheme_refused');
    // The name is allowlisted, the address is not: a redirect to the literal (any spelling) is refused.
    const byName = opts({ allowlist: parseAllowlist('images.test') });
    const hits = await hitsDuring(srv, async () => {
      expect(await codeOf(`http://images.test:${srv.port}/to-literal`, byName)).toBe('address_refused');
      expect(await codeOf(`http://images.test:${srv.port}/to-decimal`, byName)).toBe('address_refused');
    });
    expect(hits, 'only the first hop of each reaches the server').toEqual(['/to-literal', '/to-decimal']);
  });

  it('maps remote statuses: 404 is final, 503 is retryable, a redirect without Location fails', async () => {
    const e404 = await fetchUrl(`${base}/missing`, loopbackAllowed()).catch((e: unknown) => e);
    expect(classifyError(e404)).toMatchObject({ code: 'fetch_status', status: 502, retryable: false });
    const e503 = await fetchUrl(`${base}/unavailable`, loopbackAllowed()).catch((e: unknown) => e);
    expect(classifyError(e503)).toMatchObject({ code: 'fetch_status', retryable: true });
    expect(await codeOf(`${base}/no-location`, loopbackAllowed())).toBe('fetch_status');
  });

  it('refuses a declared Content-Length over the cap before reading, and an undeclared body once it passes the cap', async () => {
    expect(await codeOf(`${base}/declared-huge`, loopbackAllowed())).toBe('too_many_bytes');
    const t0 = performance.now();
    expect(await codeOf(`${base}/chunked-huge`, loopbackAllowed())).toBe('too_many_bytes');
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it('never returns more than the cap when Content-Length lies or is absent, and fails when the body ends early', async () => {
    const cap = 64 * 1024;
    const body = Buffer.alloc(4 * cap, 1);
    const cases: Array<[string, string, string | number]> = [
      // Understated: the parser stops at the declared length; the extra bytes are never read.
      ['understated', 'HTTP/1.1 200 OK\ncontent-length: 100\nconnection: close\n', 100],
      // No length, body until close: counted while streaming and cut at the cap.
      ['absent', 'HTTP/1.1 200 OK\nconnection: close\n', 'too_many_bytes'],
      ['conflicting', 'HTTP/1.1 200 OK\ncontent-length: 100\ncontent-length: 999999\n', 'fetch_failed'],
    ];
    for (const [label, head, want] of cases) {
      const raw = await startRawServer(head, body);
      try {
        const got = await fetchUrl(`http://127.0.0.1:${raw.port}/x.jpg`, loopbackAllowed({ maxBytes: cap })).then(
          (r) => r.bytes.length,
          (e: unknown) => classifyError(e).code,
        );
        expect(got, label).toBe(want);
      } finally {
        await raw.close();
      }
    }
    const short = await startRawServer('HTTP/1.1 200 OK\ncontent-length: 5000\nconnection: close\n', Buffer.alloc(10, 1));
    try {
      const err = await fetchUrl(`http://127.0.0.1:${short.port}/x.jpg`, loopbackAllowed()).catch((e: unknown) => e);
      expect(classifyError(err)).toMatchObject({ code: 'fetch_failed', retryable: true });
    } finally {
      await short.close();
    }
  });

  it('stops a slow body or a silent server at the time cap: fetch_timeout, retryable', async () => {
    for (const path of ['/slow', '/silent']) {
      const t0 = performance.now();
      const err = await fetchUrl(`${base}${path}`, loopbackAllowed({ fetchTimeoutMs: 300 })).catch((e: unknown) => e);
      expect(classifyError(err), path).toMatchObject({ code: 'fetch_timeout', status: 504, retryable: true });
      expect(performance.now() - t0, path).toBeLessThan(2000);
    }
  });
});

/** A self-signed certificate for images.test, made with openssl; null where openssl is missing. */
function makeCert(): { key: Buffer; cert: Buffer } | null {
  const dir = mkdtempSync(join(tmpdir(), 'mira-tls-'));
  try {
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=images.test', '-addext', 'subjectAltName=DNS:images.test'], { stdio: 'ignore' });
    return r.status === 0 ? { key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) } : null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const tls = makeCert();

describe.skipIf(tls === null)('https with a pinned address', () => {
  it('sends the name as SNI and checks the certificate against the name, not the address', async () => {
    const names: Array<string | false | null> = [];
    const server = https.createServer({ key: tls!.key, cert: tls!.cert }, (req, res) => {
      names.push((req.socket as TLSSocket).servername);
      res.writeHead(200, { 'content-length': image.length }).end(image);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    // Trust the test certificate; everything else is fetchUrl's own request options.
    const request: RequestFn = (o, cb) => https.request({ ...o, ca: tls!.cert }, cb);
    try {
      const o = opts({ allowlist: parseAllowlist('images.test,other.test'), request });
      expect((await fetchUrl(`https://images.test:${port}/img.jpg`, o)).bytes.equals(image)).toBe(true);
      expect(names).toEqual(['images.test']);
      const err = await fetchUrl(`https://other.test:${port}/img.jpg`, o).catch((e: unknown) => e);
      expect(classifyError(err).code, 'certificate for images.test, URL names other.test').toBe('fetch_failed');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
