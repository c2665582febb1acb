/**
 * Caption search over a next-token function, independent of ONNX so it can be checked by hand.
 * `step` receives sequences of equal length and returns each one's next-token logits.
 */
export type StepFn = (seqs: number[][]) => Promise<Float32Array[]>;

export interface SearchOptions {
  eos: number;
  /** New tokens at most, the EOS included. */
  maxNew: number;
  /** EOS is forbidden before this many new tokens. */
  minNew: number;
  /** HF semantics: logits of tokens already in the sequence are divided (if > 0) or multiplied (if < 0) by it. */
  repetitionPenalty: number;
}

export interface SearchResult {
  /** The new tokens, without the prefix and without EOS. */
  ids: number[];
  /** Sum of the log-probabilities of the new tokens (EOS included when emitted). */
  logProb: number;
  /** Beam search only: the numBeams best finished hypotheses, best first by length-normalised score (the first is this result). */
  hypotheses?: { ids: number[]; logProb: number; score: number }[];
}

/** Applies repetition penalty and min length, then returns log-softmax. */
export function processLogits(logits: Float32Array, seq: number[], generated: number, o: SearchOptions): Float32Array {
  const x = Float32Array.from(logits);
  if (o.repetitionPenalty !== 1) {
    for (const id of new Set(seq)) {
      const v = x[id]!;
      x[id] = v > 0 ? v / o.repetitionPenalty : v * o.repetitionPenalty;
    }
  }
  if (generated < o.minNew) x[o.eos] = -Infinity;
  return logSoftmax(x);
}

export function logSoftmax(x: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of x) if (v > max) max = v;
  let sum = 0;
  for (const v of x) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return x.map((v) => v - lse);
}

/** log softmax(x)[index], without building the whole distribution (the LM scores one given token per position). */
export function logProbOf(x: ArrayLike<number>, index: number): number {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i]! > max) max = x[i]!;
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.exp(x[i]! - max);
  return x[index]! - max - Math.log(sum);
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

export async function greedy(step: StepFn, prefix: number[], o: SearchOptions): Promise<SearchResult> {
  const seq = [...prefix];
  let logProb = 0;
  for (let n = 0; n < o.maxNew; n++) {
    const [logits] = await step([seq]);
    const lp = processLogits(logits!, seq, n, o);
    const next = argmax(lp);
    logProb += lp[next]!;
    if (next === o.eos) break;
    seq.push(next);
  }
  return { ids: seq.slice(prefix.length), logProb };
}

export interface BeamOptions extends SearchOptions {
  numBeams: number;
  /** Finished scores are logProb / length ** lengthPenalty (length counts new tokens and the EOS). */
  lengthPenalty?: number;
}

interface Beam {
  seq: number[];
  logProb: number;
}

/**
 * Beam search as Hugging Face's generate() does it: keep numBeams live beams; a candidate ending in
 * EOS among the top numBeams becomes a finished hypothesis; stop once numBeams hypotheses are done
 * and no live beam can beat the worst of them, or at maxNew.
 */
export async function beamSearch(step: StepFn, prefix: number[], o: BeamOptions): Promise<SearchResult> {
  if (o.numBeams <= 1) return greedy(step, prefix, o); // as generate() does for num_beams = 1
  const lp = o.lengthPenalty ?? 1;
  const norm = (logProb: number, len: number) => logProb / Math.max(1, len) ** lp;
  let beams: Beam[] = [{ seq: [...prefix], logProb: 0 }];
  // The numBeams best finished hypotheses, best first (HF's BeamHypotheses: a worse one is dropped).
  const done: { ids: number[]; logProb: number; score: number }[] = [];
  const finish = (ids: number[], logProb: number, score: number) => {
    if (done.length === o.numBeams && score <= done[done.length - 1]!.score) return;
    done.push({ ids, logProb, score });
    done.sort((a, b) => b.score - a.score);
    if (done.length > o.numBeams) done.pop();
  };
  const worstDone = () => (done.length < o.numBeams ? -Infinity : done[done.length - 1]!.score);

  for (let n = 0; n < o.maxNew && beams.length > 0; n++) {
    const logits = await step(beams.map((b) => b.seq));
    const candidates: { beam: Beam; token: number; logProb: number }[] = [];
    beams.forEach((beam, b) => {
      const lps = processLogits(logits[b]!, beam.seq, n, o);
      // The best 2 * numBeams tokens of each beam are enough to fill numBeams live beams.
      for (const token of topK(lps, 2 * o.numBeams)) candidates.push({ beam, token, logProb: beam.logProb + lps[token]! });
    });
    candidates.sort((a, b) => b.logProb - a.logProb);
    const next: Beam[] = [];
    for (const [rank, c] of candidates.entries()) {
      if (c.token === o.eos) {
        if (rank < o.numBeams) {
          const ids = c.beam.seq.slice(prefix.length);
          finish(ids, c.logProb, norm(c.logProb, ids.length + 1));
        }
      } else {
        next.push({ seq: [...c.beam.seq, c.token], logProb: c.logProb });
      }
      if (next.length === o.numBeams) break;
    }
    beams = next;
    if (done.length >= o.numBeams) {
      const bestLive = Math.max(...beams.map((b) => norm(b.logProb, n + 2)));
      if (bestLive <= worstDone()) break;
    }
  }
  for (const b of beams) {
    const ids = b.seq.slice(prefix.length);
    finish(ids, b.logProb, norm(b.logProb, ids.length));
  }
  const best = done[0]!;
  return { ids: best.ids, logProb: best.logProb, hypotheses: done };
}

function topK(x: Float32Array, k: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < x.length; i++) {
    if (x[i] === -Infinity) continue;
    if (idx.length < k) {
      idx.push(i);
      idx.sort((a, b) => x[b]! - x[a]!);
    } else if (x[i]! > x[idx[k - 1]!]!) {
      idx[k - 1] = i;
      idx.sort((a, b) => x[b]! - x[a]!);
    }
  }
  return idx;
}

export interface SampleOptions extends SearchOptions {
  topP: number;
  temperature: number;
  /** Uniform [0, 1) source; seed it for reproducible captions. */
  random: () => number;
}

/** Nucleus sampling: sample from the smallest set of tokens whose probability reaches topP. */
export async function nucleus(step: StepFn, prefix: number[], o: SampleOptions): Promise<SearchResult> {
  const seq = [...prefix];
  let logProb = 0;
  for (let n = 0; n < o.maxNew; n++) {
    const [logits] = await step([seq]);
    const scaled = logits!.map((v) => v / o.temperature);
    const lp = processLogits(scaled, seq, n, o);
    const order = Array.from(lp.keys()).filter((i) => lp[i] !== -Infinity).sort((a, b) => lp[b]! - lp[a]!);
    const keep: number[] = [];
    let mass = 0;
    for (const i of order) {
      keep.push(i);
      mass += Math.exp(lp[i]!);
      if (mass >= o.topP) break;
    }
    let r = o.random() * mass;
    let next = keep[keep.length - 1]!;
    for (const i of keep) {
      r -= Math.exp(lp[i]!);
      if (r <= 0) {
        next = i;
        break;
      }
    }
    logProb += lp[next]!;
    if (next === o.eos) break;
    seq.push(next);
  }
  return { ids: seq.slice(prefix.length), logProb };
}

/** mulberry32: a small seeded PRNG for reproducible sampling. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
