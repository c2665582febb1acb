/**
 * SSRF-safe fetch of an image URL.
 * - http and https only, no credentials in the URL;
 * - the host is resolved once (every address) and refused if any address is loopback, private,
 *   link-local, metadata, reserved or multicast, in any spelling (ip.ts), unless allowlisted;
 * - the checked address is pinned: the socket's `lookup` returns it, so a second DNS answer (DNS
 *   rebinding) cannot change where the connection goes; Host and SNI stay the name;
 * - redirects are followed by hand, at most `maxRedirects`, each one checked again;
 * - the body is capped while it streams (Content-Length is only trusted to refuse early), and the
 *   whole fetch runs under one deadline.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { IngestError } from './errors.ts';
import { type Allowlist, addressAllowed, formatIp, hostAllowed, type Ip, parseIp, refusedReason } from './ip.ts';

export interface ResolvedAddress {
  address: string;
  family: number;
}

export type Resolver = (host: string) => Promise<ResolvedAddress[]>;
export type RequestFn = (options: http.RequestOptions, onResponse: (res: http.IncomingMessage) => void) => http.ClientRequest;

export interface FetchOptions {
  maxBytes: number;
  fetchTimeoutMs: number;
  maxRedirects: number;
  allowlist: Allowlist;
  /** DNS, injectable for tests; default: dns.lookup with every address. */
  resolve?: Resolver;
  /** http(s).request, injectable for tests. */
  request?: RequestFn;
}

export interface Fetched {
  bytes: Buffer;
  /** The URL the body came from, after redirects. */
  finalUrl: string;
  contentType: string | undefined;
}

const defaultResolve: Resolver = (host) => dnsLookup(host, { all: true, verbatim: true });
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Parses and checks a URL's form (scheme, credentials) without resolving it. */
export function parseFetchUrl(input: string): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new IngestError('url_invalid', `Not a valid URL: ${JSON.stringify(input.slice(0, 200))}.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new IngestError('url_scheme_refused', `Only http and https URLs are fetched, not ${url.protocol} (${redact(url)}).`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new IngestError('url_invalid', `URLs with credentials are not accepted (${redact(url)}).`);
  }
  return url;
}

/** The URL for messages: no credentials, at most 200 characters. */
function redact(url: URL): string {
  const u = new URL(url.href);
  u.username = '';
  u.password = '';
  return u.href.length > 200 ? `${u.href.slice(0, 199)}…` : u.href;
}

/** The address to connect to for `url`, after every check; throws address_refused or fetch_failed. */
export async function checkedAddress(url: URL, allowlist: Allowlist, resolve: Resolver): Promise<Ip> {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const literal = parseIp(host);
  const refuse = (ip: Ip, why: string, literalHost: boolean) =>
    new IngestError(
      'address_refused',
      `${redact(url)} ${literalHost ? 'is' : 'resolves to'} ${literalHost ? formatIp(ip) + ', ' : ''}a ${why} address; refused (see MIRA_URL_ALLOWLIST).`,
    );
  if (literal) {
    const why = refusedReason(literal);
    if (why !== null && !addressAllowed(allowlist, literal)) throw refuse(literal, why, true);
    return literal;
  }
  let answers: ResolvedAddress[];
  try {
    answers = await resolve(host);
  } catch (e) {
    throw new IngestError('fetch_failed', `Could not resolve the host of ${redact(url)} (${(e as NodeJS.ErrnoException).code ?? 'error'}).`, { cause: e });
  }
  const ips = answers.map((a) => parseIp(a.address)).filter((ip): ip is Ip => ip !== null);
  if (ips.length === 0 || ips.length !== answers.length) {
    throw new IngestError('fetch_failed', `The host of ${redact(url)} resolved to no usable address.`);
  }
  if (!hostAllowed(allowlist, host)) {
    // Every answer must pass: a mix of a public and a private address is refused as a whole.
    for (const ip of ips) {
      const why = refusedReason(ip);
      if (why !== null && !addressAllowed(allowlist, ip)) throw refuse(ip, why, false);
    }
  }
  return ips[0]!;
}

/** A socket `lookup` that answers with the checked address whatever it is asked. */
export function pinnedLookup(ip: Ip): LookupFunction {
  const address = formatIp(ip);
  const family = ip.family;
  return ((_host: string, options: unknown, callback?: unknown) => {
    const cb = (typeof options === 'function' ? options : callback) as (...args: unknown[]) => void;
    const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all === true;
    if (all) cb(null, [{ address, family }]);
    else cb(null, address, family);
  }) as LookupFunction;
}

/** GETs `input` under all the checks above. Throws IngestError; never returns more than maxBytes. */
export async function fetchUrl(input: string, opts: FetchOptions): Promise<Fetched> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), opts.fetchTimeoutMs);
  timer.unref();
  let url = parseFetchUrl(input);
  try {
    for (let redirects = 0; ; redirects++) {
      const ip = await abortable(checkedAddress(url, opts.allowlist, opts.resolve ?? defaultResolve), controller.signal);
      const res = await get(url, ip, opts, controller.signal);
      if (REDIRECTS.has(res.statusCode ?? 0)) {
        res.destroy();
        const location = res.headers.location;
        if (location === undefined) throw statusError(url, res.statusCode!);
        if (redirects >= opts.maxRedirects) {
          throw new IngestError('too_many_redirects', `${redact(url)} redirected more than ${opts.maxRedirects} times.`);
        }
        try {
          url = parseFetchUrl(new URL(location, url).href);
        } catch (e) {
          if (e instanceof IngestError) throw e;
          throw new IngestError('url_invalid', `${redact(url)} redirected to an invalid URL.`);
        }
        continue;
      }
      const status = res.statusCode ?? 0;
      if (status < 200 || status > 299) {
        res.destroy();
        throw statusError(url, status);
      }
      const bytes = await readCapped(res, url, opts.maxBytes);
      return { bytes, finalUrl: url.href, contentType: res.headers['content-type'] };
    }
  } catch (e) {
    if (controller.signal.aborted && !(e instanceof IngestError && e.code !== 'fetch_failed')) {
      throw new IngestError('fetch_timeout', `${redact(url)} did not answer within ${opts.fetchTimeoutMs} ms.`, { cause: e });
    }
    throw e;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

function statusError(url: URL, status: number): IngestError {
  return new IngestError('fetch_status', `${redact(url)} answered HTTP ${status}.`, { upstreamStatus: status });
}

function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new IngestError('fetch_failed', 'aborted'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function get(url: URL, ip: Ip, opts: FetchOptions, signal: AbortSignal): Promise<http.IncomingMessage> {
  const https_ = url.protocol === 'https:';
  const request: RequestFn = opts.request ?? ((o, cb) => (https_ ? https.request(o, cb) : http.request(o, cb)));
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        protocol: url.protocol,
        hostname,
        port: url.port === '' ? (https_ ? 443 : 80) : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        headers: { 'user-agent': 'mira-ingest', accept: 'image/*', 'accept-encoding': 'identity' },
        lookup: pinnedLookup(ip),
        // No shared agent: a pooled socket could have been opened for another address.
        agent: false,
        signal,
      },
      resolve,
    );
    req.on('error', (e) => reject(new IngestError('fetch_failed', `Fetching ${redact(url)} failed (${(e as NodeJS.ErrnoException).code ?? e.message}).`, { cause: e })));
    req.end();
  });
}

async function readCapped(res: http.IncomingMessage, url: URL, maxBytes: number): Promise<Buffer> {
  const tooMany = () => new IngestError('too_many_bytes', `${redact(url)} sent more than ${maxBytes} bytes.`);
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.destroy();
    throw tooMany();
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res) {
      total += (chunk as Buffer).length;
      if (total > maxBytes) {
        res.destroy();
        throw tooMany();
      }
      chunks.push(chunk as Buffer);
    }
  } catch (e) {
    if (e instanceof IngestError) throw e;
    throw new IngestError('fetch_failed', `The body of ${redact(url)} broke off (${(e as NodeJS.ErrnoException).code ?? 'error'}).`, { cause: e });
  }
  if (!res.complete) throw new IngestError('fetch_failed', `The body of ${redact(url)} ended early.`);
  return Buffer.concat(chunks, total);
}
