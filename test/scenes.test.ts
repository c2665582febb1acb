import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../src/scenes/rng.ts';
import {
  classifySwap,
  oneSwapNeighbours,
  sampleScene,
  sceneKey,
  validateScene,
  type Scene,
  type SwapKind,
} from '../src/scenes/scene.ts';
import { TEMPLATES, captionVariants, captionVocabulary, parseCaption, renderTemplate } from '../src/scenes/captions.ts';
import { BACKGROUNDS, COLOR_RGB, MIN_CONTRAST, colorDistance, type Layout } from '../src/scenes/layout.ts';
import { renderScene } from '../src/scenes/render.ts';
import { sampleScenes, type SceneRecord } from '../src/scenes/sample.ts';
import { generateScenes, type DatasetInfo } from '../src/scenes/generate.ts';
import { parseArgs } from '../src/scenes/cli.ts';

const run = promisify(execFile);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const twoObjects = (rel: Scene['relations'][number]['relation']): Scene => ({
  objects: [
    { size: 'small', color: 'red', shape: 'circle' },
    { size: 'large', color: 'blue', shape: 'square' },
  ],
  relations: [{ subject: 0, relation: rel, object: 1 }],
});

describe('rng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = new Rng(1);
    const b = new Rng(1);
    const c = new Rng(2);
    const xs = Array.from({ length: 5 }, () => a.u32());
    expect(Array.from({ length: 5 }, () => b.u32())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.u32())).not.toEqual(xs);
    const u = new Rng(3);
    for (let i = 0; i < 1000; i++) {
      const v = u.next();
      expect(v >= 0 && v < 1).toBe(true);
    }
  });
});

describe('sceneKey', () => {
  it('treats "A left of B" and "B right of A" as the same scene', () => {
    const flipped: Scene = {
      objects: [twoObjects('left').objects[1]!, twoObjects('left').objects[0]!],
      relations: [{ subject: 0, relation: 'right', object: 1 }],
    };
    expect(sceneKey(flipped)).toBe(sceneKey(twoObjects('left')));
    expect(sceneKey(twoObjects('left'))).not.toBe(sceneKey(twoObjects('right')));
    expect(sceneKey(twoObjects('above'))).not.toBe(sceneKey(twoObjects('below')));
  });

  it('is independent of satellite order in three-object scenes', () => {
    const s = sampleScene(new Rng(5), 3);
    const reordered: Scene = {
      objects: [s.objects[2]!, s.objects[1]!, s.objects[0]!],
      relations: [
        { subject: 0, relation: s.relations[1]!.relation, object: 1 },
        { subject: 2, relation: s.relations[0]!.relation, object: 1 },
      ],
    };
    expect(sceneKey(reordered)).toBe(sceneKey(s));
  });
});

describe('captions', () => {
  it('parseCaption inverts every template and phrasing over many random scenes', () => {
    const rng = new Rng(11);
    const seen = new Set<string>();
    for (let i = 0; i < 1500; i++) {
      const scene = sampleScene(rng, ((i % 3) + 1) as 1 | 2 | 3);
      expect(validateScene(scene)).toBeNull();
      const key = sceneKey(scene);
      for (const { template, text } of captionVariants(scene)) {
        seen.add(template);
        const parsed = parseCaption(text);
        expect(parsed, text).not.toBeNull();
        expect(sceneKey(parsed!), text).toBe(key);
        expect(validateScene(parsed!), text).toBeNull();
      }
    }
    expect([...seen].sort()).toEqual(TEMPLATES.map((t) => t.id).sort());
  });

  it('produces the documented example captions', () => {
    const s = twoObjects('left');
    const byId = (id: string) => renderTemplate(TEMPLATES.find((t) => t.id === id)!, s);
    expect(byId('o2-rel')).toBe('a small red circle to the left of a large blue square');
    expect(byId('o2-with')).toBe('a large blue square with a small red circle on its left');
    expect(byId('o2-inverse')).toBe('a large blue square to the right of a small red circle');
  });

  it('vocabulary is closed: sorted, unique, lowercase, and covers every produced word', () => {
    const vocab = captionVocabulary();
    expect(vocab).toEqual([...new Set(vocab)].sort());
    for (const w of vocab) expect(w).toMatch(/^[a-z]+$/);
    const words = new Set(vocab);
    const rng = new Rng(12);
    for (let i = 0; i < 300; i++) {
      for (const { text } of captionVariants(sampleScene(rng))) {
        for (const w of text.split(' ')) expect(words.has(w), w).toBe(true);
      }
    }
  });

  it('rejects malformed captions and tolerates case and a final period', () => {
    for (const bad of [
      '',
      'a red circle',
      'a small red circle to the left of',
      'a small red circle to the left of a large blue square and',
      'a small red circle, to the left of a large blue square',
      'a small red blob',
      'a small red circle to the left of a large blue square it',
      'a large blue square with a small red circle to the left of',
    ]) {
      expect(parseCaption(bad), bad).toBeNull();
    }
    const parsed = parseCaption('  A Small Red Circle  to the left of a large blue square.');
    expect(parsed && sceneKey(parsed)).toBe(sceneKey(twoObjects('left')));
  });
});

describe('sampleScenes', () => {
  const records = sampleScenes(7, 2000);

  it('emits canonical scenes with 1-3 distinct captions that all parse to the record key', () => {
    const counts = [0, 0, 0, 0];
    for (const r of records) {
      expect(validateScene(r.scene)).toBeNull();
      expect(r.key).toBe(sceneKey(r.scene));
      expect(r.captions.length).toBeGreaterThanOrEqual(1);
      expect(r.captions.length).toBeLessThanOrEqual(3);
      expect(new Set(r.captions).size).toBe(r.captions.length);
      for (const c of r.captions) expect(sceneKey(parseCaption(c)!)).toBe(r.key);
      counts[r.scene.objects.length]!++;
    }
    for (const k of [1, 2, 3]) expect(counts[k]).toBeGreaterThan(200);
  });

  it('is prefix-stable and deterministic', () => {
    expect(sampleScenes(7, 50)).toEqual(records.slice(0, 50));
    expect(sampleScenes(8, 50)).not.toEqual(records.slice(0, 50));
  });

  it('builds contrast groups whose members differ from the previous one by exactly the recorded swap', () => {
    const groups = new Map<number, SceneRecord[]>();
    for (const r of records) groups.set(r.group, [...(groups.get(r.group) ?? []), r]);
    const ids = [...groups.keys()];
    expect(ids).toEqual(ids.map((_, i) => i)); // contiguous, in order
    const kinds = new Set<SwapKind>();
    let inGroups = 0;
    for (const members of groups.values()) {
      expect(members.length).toBeLessThanOrEqual(3);
      if (members.length === 1) {
        expect(members[0]!.contrast).toBeNull();
        continue;
      }
      inGroups += members.length;
      expect(members[0]!.contrast).toBeNull();
      expect(new Set(members.map((m) => m.key)).size).toBe(members.length);
      for (let i = 1; i < members.length; i++) {
        const prev = members[i - 1]!;
        const cur = members[i]!;
        expect(cur.index).toBe(prev.index + 1);
        expect(cur.contrast).toEqual({ of: prev.index, swap: expect.any(String) });
        expect(classifySwap(prev.scene, cur.scene)).toBe(cur.contrast!.swap);
        kinds.add(cur.contrast!.swap);
        assertOnlySwapped(prev.scene, cur.scene, cur.contrast!.swap);
      }
    }
    expect([...kinds].sort()).toEqual(['color', 'relation', 'size']);
    const fraction = inGroups / records.length;
    expect(fraction).toBeGreaterThan(0.3);
    expect(fraction).toBeLessThan(0.5);
  });

  it('puts every record in a contrast group at --contrast 1 and none at 0', () => {
    const all = sampleScenes(11, 300, { contrastFraction: 1 });
    const sizes = new Map<number, number>();
    for (const r of all) sizes.set(r.group, (sizes.get(r.group) ?? 0) + 1);
    expect([...sizes.values()].filter((n) => n === 1).length).toBeLessThan(3);
    expect(all.filter((r) => r.contrast).length).toBeGreaterThan(300 / 2.5);
    expect(sampleScenes(11, 300, { contrastFraction: 0 }).every((r) => r.contrast === null)).toBe(true);
    expect(() => sampleScenes(11, 3, { contrastFraction: 1.01 })).toThrow('contrastFraction');
  });

  it('makes word-bag matching fail on color and size swaps', () => {
    const bag = (s: string) => s.split(' ').sort().join(' ');
    let checked = 0;
    for (const r of records.filter((r) => r.contrast && r.contrast.swap !== 'relation')) {
      const prev = records[r.contrast!.of]!;
      const t = TEMPLATES.find((t) => t.objects === r.scene.objects.length)!;
      expect(bag(renderTemplate(t, r.scene))).toBe(bag(renderTemplate(t, prev.scene)));
      expect(r.key).not.toBe(prev.key);
      checked++;
    }
    expect(checked).toBeGreaterThan(50);
  });

  it('lays out objects inside the image, apart, in their relations, on a contrasting background', () => {
    for (const r of records) {
      const L: Layout = r.layout;
      expect(L.objects.length).toBe(r.scene.objects.length);
      L.objects.forEach((p, i) => {
        expect(p.cx - p.d / 2).toBeGreaterThanOrEqual(0);
        expect(p.cy + p.d / 2).toBeLessThanOrEqual(1);
        expect(p.cy - p.d / 2).toBeGreaterThanOrEqual(0);
        expect(p.cx + p.d / 2).toBeLessThanOrEqual(1);
        const size = r.scene.objects[i]!.size;
        if (size === 'small') expect(p.d).toBeLessThanOrEqual(0.21);
        else expect(p.d).toBeGreaterThan(0.23);
        for (const stop of [L.background.from, L.background.to]) {
          expect(colorDistance(BACKGROUNDS[stop]!, COLOR_RGB[r.scene.objects[i]!.color])).toBeGreaterThanOrEqual(MIN_CONTRAST);
        }
        for (let j = i + 1; j < L.objects.length; j++) {
          const q = L.objects[j]!;
          const apart = Math.abs(p.cx - q.cx) >= (p.d + q.d) / 2 || Math.abs(p.cy - q.cy) >= (p.d + q.d) / 2;
          expect(apart).toBe(true);
        }
      });
      for (const rel of r.scene.relations) {
        const s = L.objects[rel.subject]!;
        const o = L.objects[rel.object]!;
        const dx = s.cx - o.cx;
        const dy = s.cy - o.cy;
        const along = { left: -dx, right: dx, above: -dy, below: dy }[rel.relation];
        const across = rel.relation === 'left' || rel.relation === 'right' ? Math.abs(dy) : Math.abs(dx);
        expect(along).toBeGreaterThan(0);
        expect(across).toBeLessThanOrEqual(0.31 * along + 1e-3);
      }
    }
  });
});

/** Structural check independent of classifySwap: everything equal except the one swap. */
function assertOnlySwapped(a: Scene, b: Scene, kind: SwapKind): void {
  expect(b.objects.length).toBe(a.objects.length);
  const diff = (attr: 'size' | 'color' | 'shape') =>
    a.objects.map((o, i) => i).filter((i) => a.objects[i]![attr] !== b.objects[i]![attr]);
  expect(diff('shape')).toEqual([]);
  const relDiff = a.relations.filter((r, i) => r.relation !== b.relations[i]!.relation).length;
  if (kind === 'relation') {
    expect(diff('color')).toEqual([]);
    expect(diff('size')).toEqual([]);
    expect(relDiff).toBeGreaterThan(0);
  } else {
    expect(relDiff).toBe(0);
    expect(diff(kind === 'color' ? 'size' : 'color')).toEqual([]);
    const changed = diff(kind);
    expect(changed.length).toBe(2);
    const [i, j] = changed as [number, number];
    expect(b.objects[i]![kind]).toBe(a.objects[j]![kind]);
    expect(b.objects[j]![kind]).toBe(a.objects[i]![kind]);
  }
}

describe('oneSwapNeighbours', () => {
  it('offers every kind of swap when it applies', () => {
    const s: Scene = {
      objects: [
        { size: 'small', color: 'red', shape: 'circle' },
        { size: 'large', color: 'blue', shape: 'square' },
        { size: 'small', color: 'green', shape: 'star' },
      ],
      relations: [
        { subject: 0, relation: 'left', object: 1 },
        { subject: 2, relation: 'right', object: 1 },
      ],
    };
    const kinds = oneSwapNeighbours(s).map((n) => n.kind);
    expect(kinds.filter((k) => k === 'color')).toHaveLength(3);
    expect(kinds.filter((k) => k === 'size')).toHaveLength(2);
    // Flipping either relation would give both satellites the same side; only the exchange is valid.
    expect(kinds.filter((k) => k === 'relation')).toHaveLength(1);
  });
});

describe('renderScene', () => {
  it('renders PNGs of the requested size whose bytes depend on style', async () => {
    const r = sampleScenes(3, 1)[0]!;
    const out: Record<string, string> = {};
    for (const style of ['default', 'outlined', 'noisy'] as const) {
      const png = await renderScene(r.scene, { layout: r.layout, size: 48, style });
      const meta = await sharp(png).metadata();
      expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['png', 48, 48, 3]);
      expect(sha(await renderScene(r.scene, { layout: r.layout, size: 48, style }))).toBe(sha(png));
      out[style] = sha(png);
    }
    expect(new Set(Object.values(out)).size).toBe(3);
    // Without a layout, one is sampled deterministically from the scene.
    expect(sha(await renderScene(r.scene))).toBe(sha(await renderScene(r.scene)));
  });
});

describe('generateScenes', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'mira-scenes-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function pngHashes(dir: string): Promise<Map<string, string>> {
    const names = (await readdir(dir)).filter((f) => f.endsWith('.png')).sort();
    return new Map(await Promise.all(names.map(async (f) => [f, sha(await readFile(join(dir, f)))] as [string, string])));
  }

  it('is byte-deterministic, writes distinct images, and counts match captions.jsonl', async () => {
    const progress: number[] = [];
    const a = join(root, 'a');
    const b = join(root, 'b');
    const n = 150;
    const summary = await generateScenes({ seed: 1, n, size: 32, outDir: a, onProgress: (d) => progress.push(d) });
    await generateScenes({ seed: 1, n, size: 32, outDir: b, concurrency: 3 });
    expect(progress.length).toBe(n);
    expect(progress.at(-1)).toBe(n);

    const [ja, jb] = [await readFile(join(a, 'captions.jsonl'), 'utf8'), await readFile(join(b, 'captions.jsonl'), 'utf8')];
    expect(ja).toBe(jb);
    expect(await readFile(join(a, 'dataset.json'), 'utf8')).toBe(await readFile(join(b, 'dataset.json'), 'utf8'));
    const [ha, hb] = [await pngHashes(a), await pngHashes(b)];
    expect([...ha.entries()]).toEqual([...hb.entries()]);
    expect(ha.size).toBe(n);
    expect(new Set(ha.values()).size).toBe(n); // no two images identical
    expect([...ha.keys()][42]).toBe('000042.png');

    const lines = ja.trimEnd().split('\n').map((l) => JSON.parse(l) as SceneRecord);
    expect(lines).toHaveLength(n);
    expect(Object.keys(lines[0]!).slice(0, 5)).toEqual(['file', 'captions', 'scene', 'key', 'group']);
    const info = JSON.parse(await readFile(join(a, 'dataset.json'), 'utf8')) as DatasetInfo;
    expect([info.seed, info.n, info.size, info.style]).toEqual([1, n, 32, 'default']);
    const objects = { 1: 0, 2: 0, 3: 0 };
    for (const l of lines) objects[l.scene.objects.length as 1 | 2 | 3]++;
    expect(info.counts.objects).toEqual(objects);
    expect(info.counts.uniqueKeys).toBe(new Set(lines.map((l) => l.key)).size);
    const groupSizes = new Map<number, number>();
    for (const l of lines) groupSizes.set(l.group, (groupSizes.get(l.group) ?? 0) + 1);
    expect(info.counts.contrastGroups).toBe([...groupSizes.values()].filter((s) => s > 1).length);
    expect(info.counts.contrastGroups).toBeGreaterThan(0);
    expect(info.vocabulary).toEqual(captionVocabulary());
    expect(summary.counts).toEqual(info.counts);

    // Re-rendering a record from captions.jsonl reproduces the PNG exactly.
    const rec = lines[17]!;
    expect(sha(await renderScene(rec.scene, { layout: rec.layout, size: 32 }))).toBe(ha.get(rec.file));

    // Another seed gives another dataset; a smaller run in the same dir removes stale images.
    await generateScenes({ seed: 2, n: 10, size: 32, outDir: b });
    expect(await readFile(join(b, 'captions.jsonl'), 'utf8')).not.toBe(ja.split('\n').slice(0, 10).join('\n') + '\n');
    expect((await pngHashes(b)).size).toBe(10);
  });
});

describe('cli', () => {
  it('parses flags in both forms and rejects bad ones naming the flag', () => {
    expect(parseArgs(['--seed', '3', '--n=20', '--out', '/tmp/x', '--style', 'noisy'])).toEqual({
      seed: 3,
      n: 20,
      outDir: '/tmp/x',
      size: 64,
      style: 'noisy',
    });
    const cases: Array<[string[], string]> = [
      [['--n', '5', '--out', 'd'], '--seed'],
      [['--seed', '1', '--n', 'x', '--out', 'd'], '--n'],
      [['--seed', '1', '--n', '0', '--out', 'd'], '--n'],
      [['--seed', '1', '--n', '5', '--out', 'd', '--size', '3'], '--size'],
      [['--seed', '1', '--n', '5', '--out', 'd', '--style', 'fancy'], '--style'],
      [['--seed', '1', '--n', '5', '--out', 'd', '--colour', 'x'], '--colour'],
      [['--seed', '--n', '5', '--out', 'd'], '--seed'],
      [['--seed', '-1', '--n', '5', '--out', 'd'], '--seed'],
    ];
    for (const [argv, flag] of cases) expect(() => parseArgs(argv), argv.join(' ')).toThrow(flag);
  });

  it('exits 2 with a one-line message on a bad flag, and generates with progress otherwise', async () => {
    const cli = ['tsx', 'src/scenes/cli.ts'];
    const bad = await run('npx', [...cli, '--seed', '1', '--n', 'many', '--out', '/tmp/never'], { cwd: process.cwd() }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect('code' in bad && bad.code).toBe(2);
    const lines = (bad as { stderr: string }).stderr.split('\n').filter((l) => l && !l.startsWith('npm warn'));
    expect(lines).toEqual([expect.stringContaining('--n')]);

    const dir = await mkdtemp(join(tmpdir(), 'mira-scenes-cli-'));
    try {
      const ok = await run('npx', [...cli, '--seed', '1000', '--n', '20', '--out', dir, '--size', '32']);
      expect(ok.stdout).toContain('wrote 20 scenes');
      expect(ok.stderr.split('\n').filter((l) => l.startsWith('data:scenes:')).length).toBeGreaterThanOrEqual(10);
      expect((await readdir(dir)).filter((f) => f.endsWith('.png'))).toHaveLength(20);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
