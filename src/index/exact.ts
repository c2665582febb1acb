export interface SearchHit {
  label: number;
  /** Cosine similarity in the 'cosine' space, the inner product in 'ip'. */
  score: number;
}

/** Exact top k by inner product of `query` with each label's stored vector, best first. */
export function exactTopK(query: number[], k: number, labels: Iterable<number>, vectorOf: (label: number) => number[]): SearchHit[] {
  const hits: SearchHit[] = [];
  for (const label of labels) {
    const v = vectorOf(label);
    let score = 0;
    for (let i = 0; i < query.length; i++) score += query[i]! * v[i]!;
    hits.push({ label, score });
  }
  hits.sort((a, b) => b.score - a.score || a.label - b.label);
  return hits.slice(0, k);
}
