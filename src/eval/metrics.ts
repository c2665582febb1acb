/** Retrieval and captioning metrics, pure functions so they can be checked on hand-made cases. */

/**
 * Recall@K: the fraction of queries with at least one hit among their first K results.
 * `rankings[q]` lists gallery indices best first; `hit(q, g)` says whether gallery item g answers q.
 */
export function recallAtK(rankings: number[][], hit: (q: number, g: number) => boolean, ks: number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of ks) {
    let found = 0;
    rankings.forEach((ranking, q) => {
      if (ranking.slice(0, k).some((g) => hit(q, g))) found++;
    });
    out[`r${k}`] = rankings.length ? found / rankings.length : 0;
  }
  return out;
}

/** Gallery indices sorted by descending score. */
export function rankByScore(scores: ArrayLike<number>): number[] {
  return Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
}

/**
 * Re-ranks the first `k` of an ITC ranking by new scores (BLIP: ITM match logit + ITC cosine);
 * the rest keep their ITC order behind them, as BLIP's evaluation does.
 */
export function rerankTopK(ranking: number[], k: number, rescored: number[]): number[] {
  const top = ranking.slice(0, k);
  if (rescored.length !== top.length) throw new Error(`rerankTopK: ${rescored.length} scores for ${top.length} candidates`);
  const order = rankByScore(rescored).map((j) => top[j]!);
  return [...order, ...ranking.slice(k)];
}

function ngrams(words: string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= words.length; i++) {
    const g = words.slice(i, i + n).join(' ');
    m.set(g, (m.get(g) ?? 0) + 1);
  }
  return m;
}

const words = (s: string) => s.toLowerCase().split(/\s+/).filter(Boolean);

/**
 * Corpus BLEU-4 (Papineni et al.) with several references per candidate: clipped n-gram
 * precisions for n = 1..4 summed over the corpus, uniform weights, and the brevity penalty against
 * the reference length closest to each candidate's. No smoothing.
 */
export function corpusBleu4(candidates: string[], references: string[][]): number {
  if (candidates.length !== references.length) throw new Error('corpusBleu4: one reference set per candidate');
  const matched = [0, 0, 0, 0];
  const total = [0, 0, 0, 0];
  let candLen = 0;
  let refLen = 0;
  candidates.forEach((cand, i) => {
    const c = words(cand);
    const refs = references[i]!.map(words);
    candLen += c.length;
    refLen += refs.map((r) => r.length).reduce((best, len) => (Math.abs(len - c.length) < Math.abs(best - c.length) || (Math.abs(len - c.length) === Math.abs(best - c.length) && len < best) ? len : best), Infinity);
    for (let n = 1; n <= 4; n++) {
      const cg = ngrams(c, n);
      const maxRef = new Map<string, number>();
      for (const r of refs) for (const [g, cnt] of ngrams(r, n)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, cnt));
      for (const [g, cnt] of cg) {
        matched[n - 1]! += Math.min(cnt, maxRef.get(g) ?? 0);
        total[n - 1]! += cnt;
      }
    }
  });
  if (total.some((t) => t === 0) || matched.some((m) => m === 0)) return 0;
  const logPrecision = matched.reduce((s, m, i) => s + Math.log(m / total[i]!), 0) / 4;
  const brevity = candLen >= refLen ? 1 : Math.exp(1 - refLen / Math.max(candLen, 1));
  return brevity * Math.exp(logPrecision);
}
