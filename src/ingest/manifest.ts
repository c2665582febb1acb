/**
 * JSONL manifests: one `{"path": "...", "metadata": {...}}` or `{"url": "...", "metadata": {...}}`
 * per line, blank lines skipped. A malformed line refuses the whole manifest and names its number;
 * whether each path or URL can be read is decided later, per entry (readSource).
 */
import { dirname, isAbsolute } from 'node:path';
import type { Readable } from 'node:stream';
import { IngestError } from './errors.ts';
import { openUnderRoot } from './paths.ts';
import type { IngestSource, Metadata } from './sources.ts';

/** One manifest entry with the line it came from, for the refusal report. */
export interface ManifestEntry {
  line: number;
  source: Extract<IngestSource, { kind: 'path' | 'url' }>;
}

export const MAX_MANIFEST_LINE_BYTES = 64 * 1024;

const FIELDS = new Set(['path', 'url', 'metadata']);

/** Parses one line; `base` is the folder relative paths are taken from. */
export function parseManifestLine(text: string, line: number, base: string): ManifestEntry | null {
  if (text.trim() === '') return null;
  const bad = (why: string) => new IngestError('manifest_invalid', `Manifest line ${line}: ${why}.`, { line });
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw bad('not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('expected a JSON object');
  const o = v as Record<string, unknown>;
  const unknown = Object.keys(o).find((k) => !FIELDS.has(k));
  if (unknown !== undefined) throw bad(`unknown field ${JSON.stringify(unknown.slice(0, 50))} (expected path or url, and metadata)`);
  if ((o.path === undefined) === (o.url === undefined)) throw bad('expected exactly one of "path" and "url"');
  const m = o.metadata;
  if (m !== undefined && (typeof m !== 'object' || m === null || Array.isArray(m))) throw bad('"metadata" must be an object');
  const metadata = m === undefined ? {} : { metadata: m as Metadata };
  if (o.url !== undefined) {
    if (typeof o.url !== 'string' || o.url === '') throw bad('"url" must be a non-empty string');
    return { line, source: { kind: 'url', url: o.url, ...metadata } };
  }
  if (typeof o.path !== 'string' || o.path === '' || o.path.includes('\0')) throw bad('"path" must be a non-empty string');
  // Joined as text, not normalized: a `..` stays visible to the root check when the entry is read.
  const path = isAbsolute(o.path) ? o.path : `${base}/${o.path}`;
  return { line, source: { kind: 'path', path, ...metadata } };
}

/** Splits a byte stream into lines without holding more than one line (capped) in memory. */
export async function parseManifestStream(stream: Readable, base: string, maxLines: number): Promise<ManifestEntry[]> {
  const entries: ManifestEntry[] = [];
  let line = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const finish = (tail: Buffer) => {
    line++;
    if (line > maxLines) throw new IngestError('manifest_too_long', `The manifest has more than ${maxLines} lines.`, { line });
    let text = Buffer.concat([...pending, tail]).toString('utf8').replace(/\r$/, '');
    if (line === 1) text = text.replace(/^\uFEFF/, '');
    pending = [];
    pendingBytes = 0;
    const e = parseManifestLine(text, line, base);
    if (e) entries.push(e);
  };
  try {
    for await (const chunk of stream) {
      let buf = chunk as Buffer;
      for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10)) {
        if (pendingBytes + nl > MAX_MANIFEST_LINE_BYTES) throw longLine(line + 1);
        finish(buf.subarray(0, nl));
        buf = buf.subarray(nl + 1);
      }
      pendingBytes += buf.length;
      if (pendingBytes > MAX_MANIFEST_LINE_BYTES) throw longLine(line + 1);
      if (buf.length > 0) pending.push(buf);
    }
  } finally {
    stream.destroy();
  }
  if (pendingBytes > 0) finish(Buffer.alloc(0));
  return entries;
}

function longLine(line: number): IngestError {
  return new IngestError('manifest_invalid', `Manifest line ${line}: longer than ${MAX_MANIFEST_LINE_BYTES} bytes.`, { line });
}

/** Reads a manifest under the ingest root. Relative entry paths are taken from the manifest's folder. */
export async function readManifest(root: string | undefined, userPath: string, maxLines: number): Promise<ManifestEntry[]> {
  const { fh, realPath } = await openUnderRoot(root, userPath);
  try {
    return await parseManifestStream(fh.createReadStream({ autoClose: false }), dirname(realPath), maxLines);
  } finally {
    await fh.close();
  }
}
