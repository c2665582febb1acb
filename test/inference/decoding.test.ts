import { describe, expect, it } from 'vitest';
import { beamSearch, greedy, logProbOf, logSoftmax, nucleus, seededRandom, type StepFn } from '../../src/inference/decoding.ts';

// A toy decoder whose next-token distribution depends only on the last token, so every sequence's
// probability can be worked out by hand. Tokens: 0 = EOS, 1 = a, 2 = b, 3 = x, 9 = BOS.
const table: Record<number, number[]> = {
  9: [0.0, 0.6, 0.4, 0.0], // BOS -> a 0.6, b 0.4
  1: [0.4, 0.0, 0.3, 0.3], // a -> EOS 0.4, b 0.3, x 0.3
  2: [0.9, 0.05, 0.0, 0.05], // b -> EOS 0.9
  3: [1.0, 0.0, 0.0, 0.0], // x -> EOS
};
const toy: StepFn = async (seqs) =>
  seqs.map((s) => Float32Array.from(table[s[s.length - 1]!]!.map((p) => (p > 0 ? Math.log(p) : -1e9))));
const base = { eos: 0, maxNew: 5, minNew: 0, repetitionPenalty: 1 };

describe('caption search on a hand-checkable toy decoder', () => {
  it('greedy takes the locally best token: a, then EOS (p = 0.6 * 0.4 = 0.24)', async () => {
    const r = await greedy(toy, [9], base);
    expect(r.ids).toEqual([1]);
    expect(r.logProb).toBeCloseTo(Math.log(0.24), 5);
  });

  it('beam search finds the best-scoring sequence: b, then EOS (p = 0.4 * 0.9 = 0.36)', async () => {
    const r = await beamSearch(toy, [9], { ...base, numBeams: 2 });
    expect(r.ids).toEqual([2]);
    expect(r.logProb).toBeCloseTo(Math.log(0.36), 5);
  });

  it('beam search lists its finished hypotheses best first, the result first', async () => {
    const r = await beamSearch(toy, [9], { ...base, numBeams: 2 });
    // Scores are log-probs per token, EOS counted: b EOS 0.36 over 2 tokens, then a x EOS 0.18 over 3,
    // which pushes out a EOS (0.24 over 2) as HF's BeamHypotheses does; a b EOS (0.162 over 3) never gets in.
    expect(r.hypotheses!.map((h) => h.ids)).toEqual([[2], [1, 3]]);
    expect(r.hypotheses![0]).toMatchObject({ ids: r.ids, logProb: r.logProb });
    expect(r.hypotheses!.map((h) => h.score)).toEqual([expect.closeTo(Math.log(0.36) / 2, 5), expect.closeTo(Math.log(0.18) / 3, 5)]);
    const scores = r.hypotheses!.map((h) => h.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
  });

  it('logProbOf is one entry of logSoftmax, large logits included', () => {
    const x = Float32Array.from([3, -1, 200, 0.5, 199]);
    const full = logSoftmax(x);
    for (let i = 0; i < x.length; i++) expect(logProbOf(x, i)).toBeCloseTo(full[i]!, 5);
    expect(logProbOf(x, 2)).toBeCloseTo(-Math.log(1 + Math.exp(-1)), 5);
  });

  it('with one beam, beam search equals greedy', async () => {
    const g = await greedy(toy, [9], base);
    const b = await beamSearch(toy, [9], { ...base, numBeams: 1 });
    expect(b.ids).toEqual(g.ids);
  });

  it('min length forbids EOS until enough tokens are out', async () => {
    const r = await greedy(toy, [9], { ...base, minNew: 2 });
    expect(r.ids.length).toBeGreaterThanOrEqual(2);
    expect(r.ids[0]).toBe(1);
  });

  it('max length stops a sequence that never ends', async () => {
    const loop: StepFn = async (seqs) => seqs.map(() => Float32Array.from([-5, 0, -9, -9]));
    const r = await greedy(loop, [9], { ...base, maxNew: 4 });
    expect(r.ids).toEqual([1, 1, 1, 1]);
  });

  it('repetition penalty steers away from tokens already in the sequence', async () => {
    const flat: StepFn = async (seqs) => seqs.map(() => Float32Array.from([-9, 1.0, 0.9, -9]));
    const plain = await greedy(flat, [9], { ...base, maxNew: 3 });
    const penalized = await greedy(flat, [9], { ...base, maxNew: 3, repetitionPenalty: 2 });
    expect(plain.ids).toEqual([1, 1, 1]);
    expect(penalized.ids).toEqual([1, 2, 1]); // a, then b (a halved to 0.5), then a (0.5 > b halved to 0.45)
  });

  it('nucleus sampling is reproducible for a seed and stays inside the nucleus', async () => {
    const o = { ...base, topP: 0.5, temperature: 1 };
    const r1 = await nucleus(toy, [9], { ...o, random: seededRandom(42) });
    const r2 = await nucleus(toy, [9], { ...o, random: seededRandom(42) });
    expect(r1).toEqual(r2);
    // With top-p 0.5 only "a" (0.6) is in the first nucleus.
    expect(r1.ids[0]).toBe(1);
  });
});
