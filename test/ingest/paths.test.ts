import { mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyError } from '../../src/ingest/errors.ts';
import { expandPath } from '../../src/ingest/expand.ts';
import { parseManifestStream, readManifest } from '../../src/ingest/manifest.ts';
import { isInside, readFileUnderRoot, resolveUnderRoot } from '../../src/ingest/paths.ts';
import { makePathTree, type PathTree } from '../fixtures/hostile/make.ts';

let base: string;
let tree: PathTree;

beforeAll(async () => {
  base = realpathSync(mkdtempSync(join(tmpdir(), 'mira-paths-')));
  tree = await makePathTree(base);
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

async function codeOf(work: Promise<unknown>): Promise<string> {
  try {
    await work;
    return 'ok';
  } catch (e) {
    return classifyError(e).code;
  }
}

const read = (p: string, root: string | undefined = tree.root, max = 1024 * 1024) => readFileUnderRoot(root, p, max);

describe('paths under the ingest root', () => {
  it('reads files inside the root, relative or absolute, and returns the real path', async () => {
    const a = await read('a.jpg');
    expect(a.realPath).toBe(join(tree.root, 'a.jpg'));
    expect(a.bytes.equals(readFileSync(join(tree.root, 'a.jpg')))).toBe(true);
    expect((await read(join(tree.root, 'sub/b.png'))).realPath).toBe(join(tree.root, 'sub/b.png'));
    expect((await read('link-in.jpg')).realPath, 'a symlink inside the root resolves to its target').toBe(join(tree.root, 'a.jpg'));
  });

  it('refuses .., absolute paths outside, symlinks out and the sibling-prefix trick with path_outside_root', async () => {
    const tricks = [
      '../outside/secret.jpg',
      'sub/../../outside/secret.jpg',
      'sub/../a.jpg', // harmless in effect, but `..` is refused outright
      join(tree.outside, 'secret.jpg'),
      '/etc/passwd',
      join(tree.sibling, 'secret.jpg'), // `${root}-evil/...` starts with the root's text
      `../${relative(base, tree.sibling)}/secret.jpg`,
      'link-out.jpg',
      'link-sibling.jpg',
      'dir-out/secret.jpg',
    ];
    for (const p of tricks) expect(await codeOf(read(p)), p).toBe('path_outside_root');
  });

  it('compares with a trailing separator', () => {
    expect(isInside('/data/root', '/data/root')).toBe(true);
    expect(isInside('/data/root/a.jpg', '/data/root')).toBe(true);
    expect(isInside('/data/root-evil/a.jpg', '/data/root')).toBe(false);
    expect(isInside('/data/rootx', '/data/root')).toBe(false);
    expect(isInside('/anything', '/')).toBe(true);
  });

  it('refuses paths outside the root without telling whether they exist', async () => {
    expect(await codeOf(read('/nonexistent/x.jpg'))).toBe('path_outside_root');
    expect(await codeOf(read(join(tree.outside, 'secret.jpg')))).toBe('path_outside_root');
  });

  it('gives path_not_found, path_not_file, path_invalid and too_many_bytes', async () => {
    expect(await codeOf(read('missing.jpg'))).toBe('path_not_found');
    expect(await codeOf(read('a.jpg/x'))).toBe('path_not_found');
    expect(await codeOf(read('sub'))).toBe('path_not_file');
    if (tree.hasFifo) expect(await codeOf(read('fifo.jpg')), 'a FIFO is refused, not read (which would block)').toBe('path_not_file');
    expect(await codeOf(read('a\0.jpg'))).toBe('path_invalid');
    expect(await codeOf(read(''))).toBe('path_invalid');
    expect(await codeOf(read('a.jpg', tree.root, 100))).toBe('too_many_bytes');
  });

  it('is off without a root: path_ingest_disabled, 403', async () => {
    const err = await readFileUnderRoot(undefined, 'a.jpg', 1024).catch((e: unknown) => e);
    expect(classifyError(err)).toMatchObject({ code: 'path_ingest_disabled', status: 403, retryable: false });
  });

  it('accepts a root given through a symlink, and paths written with either spelling of it', async () => {
    const alias = join(base, 'root-alias');
    symlinkSync(tree.root, alias);
    expect((await read('a.jpg', alias)).realPath).toBe(join(tree.root, 'a.jpg'));
    expect((await read(join(alias, 'a.jpg'), alias)).realPath).toBe(join(tree.root, 'a.jpg'));
    expect(await resolveUnderRoot(alias, join(tree.root, 'sub/b.png'))).toBe(join(tree.root, 'sub/b.png'));
  });
});

describe('expanding a directory', () => {
  it('lists image files recursively in sorted order: extensions or sniffed, no dot-files, no links out', async () => {
    const got = (await expandPath('.', { root: tree.root, maxManifestLines: 100 })).map((e) => relative(tree.root, (e.source as { path: string }).path));
    // fake.jpg has an image extension and is refused later, when decoded; link-in.jpg is a.jpg, listed once.
    expect(got).toEqual(['a.jpg', 'fake.jpg', 'noext', 'sub/b.png', 'sub/deep/c.jpg']);
  });

  it('caps the number of files', async () => {
    expect(await codeOf(expandPath('.', { root: tree.root, maxManifestLines: 3 }))).toBe('directory_too_large');
  });

  it('a single file is itself; a path outside is refused', async () => {
    expect(await expandPath('sub/b.png', { root: tree.root, maxManifestLines: 10 })).toEqual([{ source: { kind: 'path', path: join(tree.root, 'sub/b.png') } }]);
    expect(await codeOf(expandPath('dir-out', { root: tree.root, maxManifestLines: 10 }))).toBe('path_outside_root');
  });
});

describe('manifests', () => {
  const limits = () => ({ root: tree.root, maxManifestLines: 10 });

  it('parses path and url entries with metadata and line numbers; relative paths are taken from the manifest folder', async () => {
    expect(await expandPath('good.jsonl', limits())).toEqual([
      { line: 1, source: { kind: 'path', path: `${tree.root}/a.jpg`, metadata: { tag: 'a' } } },
      { line: 3, source: { kind: 'path', path: `${tree.root}/sub/b.png` } },
      { line: 4, source: { kind: 'url', url: 'http://example.invalid/x.jpg', metadata: { tag: 'remote' } } },
    ]);
    const rel = await readManifest(tree.root, 'sub/relative.jsonl', 10);
    expect(await read(rel[0]!.source.kind === 'path' ? rel[0]!.source.path : '')).toMatchObject({ realPath: join(tree.root, 'sub/b.png') });
    // `../a.jpg` stays visible as written, and is refused when the entry is read.
    expect(rel[1]!.source).toEqual({ kind: 'path', path: `${tree.root}/sub/../a.jpg` });
    expect(await codeOf(read((rel[1]!.source as { path: string }).path))).toBe('path_outside_root');
  });

  it('names the line of a malformed entry', async () => {
    const cases: Array<[string, number, RegExp]> = [
      ['bad-json.jsonl', 3, /line 3: not valid JSON/],
      ['bad-both.jsonl', 2, /line 2: expected exactly one of "path" and "url"/],
      ['bad-field.jsonl', 1, /line 1: unknown field "paht"/],
      ['bad-metadata.jsonl', 1, /line 1: "metadata" must be an object/],
      ['long-line.jsonl', 2, /line 2: longer than 65536 bytes/],
    ];
    for (const [file, line, message] of cases) {
      const err = await expandPath(file, limits()).catch((e: unknown) => e);
      expect(classifyError(err), file).toMatchObject({ code: 'manifest_invalid', status: 422, retryable: false });
      expect((err as { line: number }).line, file).toBe(line);
      expect((err as Error).message, file).toMatch(message);
    }
  });

  it('caps the number of lines', async () => {
    expect(await codeOf(readManifest(tree.root, 'eleven.jsonl', 10))).toBe('manifest_too_long');
    expect(await readManifest(tree.root, 'eleven.jsonl', 11)).toHaveLength(11);
  });

  it('entries that point outside the root parse, and each is refused when read', async () => {
    const entries = await readManifest(tree.root, 'escape.jsonl', 10);
    expect(entries.map((e) => e.line)).toEqual([1, 2, 3]);
    for (const e of entries) expect(await codeOf(read((e.source as { path: string }).path)), `line ${e.line}`).toBe('path_outside_root');
  });

  it('handles CRLF, a BOM, no final newline and chunks split mid-line', async () => {
    const text = '\uFEFF{"path": "a.jpg"}\r\n\r\n{"url": "http://example.invalid/"}';
    const bytes = Buffer.from(text);
    const chunks = Array.from(bytes, (b) => Buffer.from([b])); // one byte at a time
    const entries = await parseManifestStream(Readable.from(chunks), '/r', 10);
    expect(entries).toEqual([
      { line: 1, source: { kind: 'path', path: '/r/a.jpg' } },
      { line: 3, source: { kind: 'url', url: 'http://example.invalid/' } },
    ]);
  });

  it('the manifest itself must be under the root', async () => {
    expect(await codeOf(readManifest(tree.root, '../outside/x.jsonl', 10))).toBe('path_outside_root');
  });
});
