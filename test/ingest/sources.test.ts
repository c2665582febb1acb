import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnv } from '../../src/config.ts';
import { classifyError } from '../../src/ingest/errors.ts';
import { expandPath } from '../../src/ingest/expand.ts';
import { inspectImage } from '../../src/ingest/inspect.ts';
import { type IngestLimits, ingestLimits } from '../../src/ingest/limits.ts';
import { cleanFilename, type IngestSource, readSource } from '../../src/ingest/sources.ts';
import { makeImageCorpus, makePathTree, type HostileImage, type PathTree } from '../fixtures/hostile/make.ts';
import { startHttpServer, type TestServer } from './servers.ts';

let base: string;
let tree: PathTree;
let corpus: HostileImage[];
let srv: TestServer;
let limits: IngestLimits;

/** Every entry under `dir` with its size and mtime: what "nothing else changed" is checked against. */
function snapshot(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .map((d) => join(d.parentPath, d.name))
    .sort()
    .map((p) => {
      const st = statSync(p, { throwIfNoEntry: false });
      return `${p} ${st?.size ?? 'dangling'} ${st?.mtimeMs ?? ''}`;
    });
}

beforeAll(async () => {
  base = realpathSync(mkdtempSync(join(tmpdir(), 'mira-sources-')));
  tree = await makePathTree(join(base, 'tree'));
  corpus = await makeImageCorpus(join(tree.root, 'corpus'));
  srv = await startHttpServer(readFileSync(join(tree.root, 'a.jpg')), Object.fromEntries(corpus.map((c) => [c.name, readFileSync(c.file)])));
  limits = ingestLimits(loadEnv({ MIRA_INGEST_ROOT: tree.root, MIRA_URL_ALLOWLIST: '127.0.0.1', MIRA_FETCH_TIMEOUT_MS: '2000' }));
});
afterAll(async () => {
  await srv.close();
  rmSync(base, { recursive: true, force: true });
});

/** readSource then inspectImage, as the pipeline runs them: the code, or 'ok'. */
async function outcome(src: IngestSource, l: IngestLimits = limits): Promise<string> {
  try {
    const { bytes } = await readSource(src, l);
    await inspectImage(bytes, l);
    return 'ok';
  } catch (e) {
    return classifyError(e).code;
  }
}

describe('limits from the environment', () => {
  it('has the documented defaults, and no root', () => {
    const d = ingestLimits(loadEnv({}));
    expect(d).toMatchObject({ maxBytes: 50 * 1024 * 1024, maxPixels: 40_000_000, decodeTimeoutMs: 10_000, fetchTimeoutMs: 15_000, maxRedirects: 3, maxManifestLines: 100_000, root: undefined });
    expect(d.allowlist.cidrs).toEqual([]);
  });
});

describe('readSource: one way to bytes for uploads, URLs and paths', () => {
  it('gives the same bytes and sha256 for the same image from all three, each with its recorded source', async () => {
    const bytes = readFileSync(join(tree.root, 'a.jpg'));
    const meta = { tag: 'x' };
    const fromUpload = await readSource({ kind: 'upload', bytes, filename: '../../etc/a.jpg', metadata: meta }, limits);
    const fromUrl = await readSource({ kind: 'url', url: `http://127.0.0.1:${srv.port}/img.jpg` }, limits);
    const fromPath = await readSource({ kind: 'path', path: 'a.jpg' }, limits);
    expect(fromUpload).toMatchObject({ source: 'upload:a.jpg', metadata: meta });
    expect(fromUrl.source).toBe(`http://127.0.0.1:${srv.port}/img.jpg`);
    expect(fromPath.source).toBe(join(tree.root, 'a.jpg'));
    const shas = await Promise.all([fromUpload, fromUrl, fromPath].map(async (s) => (await inspectImage(s.bytes, limits)).sha256));
    expect(new Set(shas).size).toBe(1);
  });

  it('cleans upload filenames for the record', () => {
    expect(cleanFilename('C:\\Users\\me\\photo.jpg')).toBe('photo.jpg');
    expect(cleanFilename('a\u0000b\nc.jpg')).toBe('abc.jpg');
    expect(cleanFilename('')).toBe('upload');
    expect(cleanFilename('x'.repeat(400))).toHaveLength(255);
  });

  it('caps uploads at maxBytes', async () => {
    expect(await outcome({ kind: 'upload', bytes: Buffer.alloc(101), filename: 'x.jpg' }, { ...limits, maxBytes: 100 })).toBe('too_many_bytes');
  });
});

describe('the bad-input corpus through every source', () => {
  it('each file gets its documented outcome as an upload, as a path and as a URL', async () => {
    for (const img of corpus) {
      const rel = `corpus/${img.name}`;
      expect(await outcome({ kind: 'upload', bytes: readFileSync(img.file), filename: img.name }), `upload ${img.name}`).toBe(img.expect);
      expect(await outcome({ kind: 'path', path: rel }), `path ${img.name}`).toBe(img.expect);
      expect(await outcome({ kind: 'url', url: `http://127.0.0.1:${srv.port}/files/${img.name}` }), `url ${img.name}`).toBe(img.expect);
    }
  });

  it('refused URLs, paths and manifests change nothing on disk', async () => {
    const before = snapshot(base);
    const hits = srv.hits.length;
    const noLoopback = { ...limits, allowlist: ingestLimits(loadEnv({})).allowlist };
    const cases: Array<[IngestSource, string]> = [
      [{ kind: 'url', url: `http://127.0.0.1:${srv.port}/img.jpg` }, 'address_refused'],
      [{ kind: 'url', url: `http://0x7f.1:${srv.port}/img.jpg` }, 'address_refused'],
      [{ kind: 'url', url: 'file:///etc/passwd' }, 'url_scheme_refused'],
      [{ kind: 'path', path: '../outside/secret.jpg' }, 'path_outside_root'],
      [{ kind: 'path', path: 'link-out.jpg' }, 'path_outside_root'],
      [{ kind: 'path', path: join(tree.sibling, 'secret.jpg') }, 'path_outside_root'],
      [{ kind: 'path', path: 'fake.jpg' }, 'image_unsupported'],
    ];
    for (const [src, code] of cases) expect(await outcome(src, noLoopback), JSON.stringify(src)).toBe(code);
    for (const [manifest, code] of [['bad-json.jsonl', 'manifest_invalid'], ['../outside/x.jsonl', 'path_outside_root']]) {
      expect(await expandPath(manifest!, limits).then(() => 'ok', (e: unknown) => classifyError(e).code), manifest).toBe(code);
    }
    for (const { source } of await expandPath('escape.jsonl', limits)) expect(await outcome(source)).toBe('path_outside_root');
    expect(srv.hits.length, 'no refused URL reached the server').toBe(hits);
    expect(snapshot(base)).toEqual(before);
  });

  it('a pixel bomb fetched from a URL is refused from its header, far below the byte cap', async () => {
    const bomb = readFileSync(corpus.find((c) => c.name === 'bomb.png')!.file);
    expect(bomb.length).toBeLessThan(4096);
    expect((await sharp(bomb, { limitInputPixels: false }).metadata()).width).toBe(100_000);
    expect(await outcome({ kind: 'url', url: `http://127.0.0.1:${srv.port}/files/bomb.png` })).toBe('image_too_large');
  });
});
