import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { corpusBleu4, rankByScore, recallAtK, rerankTopK } from '../src/eval/metrics.ts';
import { generateScenes } from '../src/scenes/generate.ts';

describe('retrieval metrics on hand-made rankings', () => {
  // Three queries; gallery items 0..3; query q is answered by item q, and query 2 also by item 3
  // (two images of the same scene).
  const answers = [[0], [1], [2, 3]];
  const hit = (q: number, g: number) => answers[q]!.includes(g);

  it('recall@K counts queries with a hit in their first K results', () => {
    const rankings = [
      [0, 1, 2, 3], // hit at rank 1
      [2, 3, 0, 1], // hit at rank 4
      [1, 3, 0, 2], // hit at rank 2 (item 3 shares the scene)
    ];
    expect(recallAtK(rankings, hit, [1, 2, 4])).toEqual({ r1: 1 / 3, r2: 2 / 3, r4: 1 });
  });

  it('rankByScore sorts by descending score and breaks ties by index', () => {
    expect(rankByScore([0.1, 0.9, 0.5, 0.9])).toEqual([1, 3, 2, 0]);
  });

  it('re-ranking reorders only the top k and keeps the rest in ITC order', () => {
    const itcRanking = [4, 2, 0, 1, 3];
    // new scores for the top 3 (items 4, 2, 0): item 0 best, then 4, then 2
    expect(rerankTopK(itcRanking, 3, [0.5, 0.1, 0.9])).toEqual([0, 4, 2, 1, 3]);
  });
});

describe('BLEU-4', () => {
  it('is 1 for a candidate equal to a reference', () => {
    expect(corpusBleu4(['a small red circle above a large blue square'], [['a small red circle above a large blue square']])).toBeCloseTo(1, 10);
  });

  it('is 0 when no 4-gram matches', () => {
    expect(corpusBleu4(['red circle blue square'], [['a square that is blue and a circle']])).toBe(0);
  });

  it('matches a value worked out by hand', () => {
    // candidate "a red circle to the left of a blue square" (10 words) against the same with "right":
    // 1-grams 9/10, 2-grams 7/9, 3-grams 5/8, 4-grams 3/7; equal lengths, so no brevity penalty.
    const want = Math.exp((Math.log(9 / 10) + Math.log(7 / 9) + Math.log(5 / 8) + Math.log(3 / 7)) / 4);
    const got = corpusBleu4(['a red circle to the left of a blue square'], [['a red circle to the right of a blue square']]);
    expect(got).toBeCloseTo(want, 10);
  });

  it('clips n-gram counts by what the reference holds', () => {
    // "a a a red circle to the" against "a red circle to the left": "a" counts once, not three times.
    // 1-grams 5/7, 2-grams 4/6, 3-grams 3/5, 4-grams 2/4; the candidate is longer, so no penalty.
    const want = Math.exp((Math.log(5 / 7) + Math.log(4 / 6) + Math.log(3 / 5) + Math.log(2 / 4)) / 4);
    expect(corpusBleu4(['a a a red circle to the'], [['a red circle to the left']])).toBeCloseTo(want, 10);
  });

  it('penalizes candidates shorter than their reference', () => {
    const long = corpusBleu4(['a red circle above a blue square'], [['a red circle above a blue square to the left']]);
    expect(long).toBeCloseTo(Math.exp(1 - 10 / 7), 10);
  });
});

describe('npm run eval: bad usage', () => {
  const cli = (...args: string[]) => spawnSync('npx', ['tsx', 'src/eval/cli.ts', ...args], { encoding: 'utf8', timeout: 60_000 });
  const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l && !l.startsWith('npm warn'));

  it.each([
    [['--bogus'], '--bogus'],
    [['--bundle', 'models/default'], '--data'],
    [['--bundle', 'models/default', '--data', 'x', '--k', '0'], '--k'],
    [['--bundle', 'models/default', '--data', 'x', '--caption-method', 'sample'], '--caption-method'],
    [['--bundle', 'models/default', '--data', 'x', '--caption-method', 'beam', '--beams', '0'], '--beams'],
    [['--bundle', 'models/default', '--data', 'x', '--rerank', 'lm'], '--rerank'],
    [['--bundle', 'models/default', '--data', '/nonexistent-scenes'], '/nonexistent-scenes/captions.jsonl'],
  ])('%j exits 2 with one line naming %s', (args, named) => {
    const r = cli(...args);
    expect(r.status, r.stderr).toBe(2);
    expect(errorLines(r.stderr)).toEqual([expect.stringContaining(named)]);
  }, 60_000);

  it('--help prints the usage and exits 0', () => {
    const r = cli('--help');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^usage: npm run eval -- --bundle DIR --data DIR/);
  }, 60_000);
});

describe('npm run eval on a small generated set', () => {
  it('writes every figure the issue names, re-ranks by itm+lm (BLIP\'s rule beside it), captions by beam-itm', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mira-eval-'));
    try {
      await generateScenes({ seed: 77, n: 24, outDir: join(dir, 'scenes'), concurrency: 2 });
      const json = join(dir, 'eval.json');
      const r = spawnSync('npx', ['tsx', 'src/eval/cli.ts', '--bundle', 'models/default', '--data', join(dir, 'scenes'), '--k', '4',
        '--caption-method', 'beam-itm', '--beams', '3', '--json', json], { encoding: 'utf8', timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('captions (beam-itm-3)');
      expect(r.stdout).toContain('re-rank top 4 with ITM + ITC + LM');
      const f = JSON.parse(await readFile(json, 'utf8'));
      expect(f).toMatchObject({ n: 24, k: 4, rerankRule: 'itm+lm', caption: { method: 'beam-itm-3' } });
      for (const dir_ of ['t2i', 'i2t']) {
        for (const how of ['itc', 'rerank', 'rerankItm']) {
          const { r1, r5, r10 } = f[dir_][how];
          expect(0 <= r1 && r1 <= r5 && r5 <= r10 && r10 <= 1, `${dir_}.${how}`).toBe(true);
        }
      }
      // The default model on 24 fresh scenes: far from chance (1/24) on retrieval, most captions right.
      expect(f.t2i.rerank.r5).toBeGreaterThanOrEqual(0.9);
      expect(f.caption.bleu4).toBeGreaterThan(0.3);
      expect(f.caption.sceneAccuracy).toBeGreaterThan(0.5);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
