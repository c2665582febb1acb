/**
 * The three ways an image arrives, and one function that turns any of them into bytes under the
 * same caps, with the `source` string recorded on the image row (`upload:<filename>`, the URL as
 * requested, or the real path under the ingest root).
 */
import { basename } from 'node:path';
import { IngestError } from './errors.ts';
import type { IngestLimits } from './limits.ts';
import { readFileUnderRoot } from './paths.ts';
import { fetchUrl, parseFetchUrl, type RequestFn, type Resolver } from './url.ts';

export type Metadata = Record<string, unknown>;

export type IngestSource =
  | { kind: 'upload'; bytes: Uint8Array; filename: string; metadata?: Metadata }
  | { kind: 'url'; url: string; metadata?: Metadata }
  | { kind: 'path'; path: string; metadata?: Metadata };

export interface SourceBytes {
  bytes: Buffer;
  /** What the image row records as its source. */
  source: string;
  metadata?: Metadata;
}

/** Test seams for URL sources (DNS and the HTTP request). */
export interface SourceDeps {
  resolve?: Resolver;
  request?: RequestFn;
}

/** A filename as recorded: the last path component, no control characters, at most 255 characters. */
export function cleanFilename(name: string): string {
  // eslint-disable-next-line no-control-regex
  const base = basename(name.replace(/\\/g, '/')).replace(/[\u0000-\u001f\u007f]/g, '').trim();
  return (base === '' ? 'upload' : base).slice(0, 255);
}

export async function readSource(src: IngestSource, limits: IngestLimits, deps: SourceDeps = {}): Promise<SourceBytes> {
  const metadata = src.metadata === undefined ? {} : { metadata: src.metadata };
  switch (src.kind) {
    case 'upload': {
      const name = cleanFilename(src.filename);
      if (src.bytes.byteLength > limits.maxBytes) {
        throw new IngestError('too_many_bytes', `The upload ${JSON.stringify(name)} is ${src.bytes.byteLength} bytes; the limit is ${limits.maxBytes} bytes.`);
      }
      const bytes = Buffer.isBuffer(src.bytes) ? src.bytes : Buffer.from(src.bytes.buffer, src.bytes.byteOffset, src.bytes.byteLength);
      return { bytes, source: `upload:${name}`, ...metadata };
    }
    case 'url': {
      const url = parseFetchUrl(src.url).href;
      const fetched = await fetchUrl(url, { ...limits, ...deps });
      return { bytes: fetched.bytes, source: url, ...metadata };
    }
    case 'path': {
      const { bytes, realPath } = await readFileUnderRoot(limits.root, src.path, limits.maxBytes);
      return { bytes, source: realPath, ...metadata };
    }
  }
}
