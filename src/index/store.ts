import hnswlib, { type HierarchicalNSW } from 'hnswlib-node';
import { exactTopK, type SearchHit } from './exact.ts';

export type Space = 'cosine' | 'ip';

export interface HnswParams {
  dim: number;
  space: Space;
  M: number;
  efConstruction: number;
  /** Default ef for searches that do not give one. */
  efSearch: number;
}

export interface SearchOptions {
  ef?: number;
  /** Keep only labels for which this returns true. */
  filter?: (label: number) => boolean;
  /** Keep only these labels (a metadata filter resolved by `allowedLabels`). */
  allowedLabels?: ReadonlySet<number>;
}

/** hnswlib-node reads labels as uint32: a change sequence past this cannot be indexed. */
export const MAX_LABEL = 0xffff_ffff;
/** At or below this many allowed labels, a filtered search is exact: cheaper than a filtered graph walk. */
export const EXACT_MAX_ALLOWED = 1000;
export const INITIAL_CAPACITY = 1024;

export function newHnsw(p: HnswParams, capacity: number): HierarchicalNSW {
  const h = new hnswlib.HierarchicalNSW(p.space, p.dim);
  h.initIndex(Math.max(capacity, 1), p.M, p.efConstruction, 100, false);
  return h;
}

/**
 * An HNSW graph and the labels it holds. Labels are never reused (they come from one Postgres
 * sequence), so an add of a label seen before and a delete of one not live are no-ops: applying a
 * change twice changes nothing. Deleted labels stay in the graph as tombstones until compaction.
 */
export class HnswStore {
  readonly live = new Set<number>();
  readonly tombstones = new Set<number>();
  /** The ef hnswlib was last set to (a native call saved per search). */
  private ef = -1;
  private readonly scratch: number[];

  constructor(
    readonly params: HnswParams,
    public hnsw: HierarchicalNSW = newHnsw(params, INITIAL_CAPACITY),
  ) {
    this.scratch = new Array<number>(params.dim).fill(0);
  }

  get count(): number {
    return this.live.size;
  }

  /** Tombstones over all slots in the graph. */
  get tombstoneRatio(): number {
    const slots = this.live.size + this.tombstones.size;
    return slots === 0 ? 0 : this.tombstones.size / slots;
  }

  add(label: number, vector: ArrayLike<number>): boolean {
    if (this.live.has(label) || this.tombstones.has(label)) return false;
    if (!Number.isInteger(label) || label < 0 || label > MAX_LABEL) throw new Error(`index label ${label} is outside 0..${MAX_LABEL}`);
    if (vector.length !== this.params.dim) throw new Error(`vector of label ${label} has ${vector.length} dimensions, the index ${this.params.dim}`);
    const max = this.hnsw.getMaxElements();
    if (this.hnsw.getCurrentCount() >= max) this.hnsw.resizeIndex(Math.max(max * 2, 16));
    this.hnsw.addPoint(toArray(vector), label);
    this.live.add(label);
    return true;
  }

  delete(label: number): boolean {
    if (!this.live.has(label)) return false;
    this.hnsw.markDelete(label);
    this.live.delete(label);
    this.tombstones.add(label);
    return true;
  }

  /** The stored vector (unit length in the cosine space). */
  vector(label: number): number[] {
    return this.hnsw.getPoint(label);
  }

  /**
   * Top k live labels by similarity, best first; score = 1 - hnswlib distance (cosine similarity,
   * or the inner product in the 'ip' space). Returns min(k, matching live labels) hits:
   * - at most EXACT_MAX_ALLOWED allowed labels: exact search over them, no graph walk;
   * - otherwise hnswlib's search (with the filter callback when filtered); if it returns fewer
   *   hits than exist (a very selective filter or many tombstones can strand the walk), once more
   *   with 4× the ef, then exact search over the matching live labels.
   */
  search(vector: ArrayLike<number>, k: number, opts: SearchOptions = {}): SearchHit[] {
    if (vector.length !== this.params.dim) throw new Error(`query has ${vector.length} dimensions, the index ${this.params.dim}`);
    if (k <= 0 || this.live.size === 0) return [];
    const { filter, allowedLabels: allowed } = opts;
    // Unfiltered, nothing can run between here and hnswlib copying the query, so a scratch array
    // serves; a filter callback could search again (reentrantly) and overwrite it.
    const query = toArray(vector, filter ? undefined : this.scratch);
    const ef = opts.ef ?? this.params.efSearch;
    const test = allowed && filter ? (l: number) => allowed.has(l) && filter(l) : allowed ? (l: number) => allowed.has(l) : filter;
    if (allowed && allowed.size <= EXACT_MAX_ALLOWED) return this.exact(query, k, this.matching(allowed, test!));
    const want = Math.min(k, this.live.size);
    let hits = this.walk(query, want, ef, test);
    if (hits.length >= want) return hits;
    hits = this.walk(query, want, Math.max(ef, want) * 4, test);
    if (hits.length >= want) return hits;
    const matches = test ? this.matching(allowed ?? this.live, test) : [...this.live];
    return matches.length > hits.length ? this.exact(query, k, matches) : hits;
  }

  private walk(query: number[], k: number, ef: number, filter?: (label: number) => boolean): SearchHit[] {
    // k ≤ live labels ≤ capacity, which hnswlib requires.
    const wantEf = Math.max(ef, k);
    if (wantEf !== this.ef) this.hnsw.setEf((this.ef = wantEf));
    const { distances, neighbors } = filter ? this.hnsw.searchKnn(query, k, filter) : this.hnsw.searchKnn(query, k);
    const hits: SearchHit[] = new Array(neighbors.length);
    for (let i = 0; i < neighbors.length; i++) hits[i] = { label: neighbors[i]!, score: 1 - distances[i]! };
    return hits;
  }

  private matching(labels: Iterable<number>, test: (label: number) => boolean): number[] {
    const out: number[] = [];
    for (const l of labels) if (this.live.has(l) && test(l)) out.push(l);
    return out;
  }

  private exact(query: number[], k: number, labels: Iterable<number>): SearchHit[] {
    const q = this.params.space === 'cosine' ? normalized(query) : query;
    return exactTopK(q, k, labels, (l) => this.hnsw.getPoint(l));
  }
}

/** hnswlib-node takes only JS arrays. A plain loop: Array.from on a typed array is ~10× slower. */
function toArray(v: ArrayLike<number>, into?: number[]): number[] {
  if (Array.isArray(v)) return v;
  const out = into ?? new Array<number>(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i]!;
  return out;
}

function normalized(v: number[]): number[] {
  let s = 0;
  for (const x of v) s += x * x;
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  return v.map((x) => x * inv);
}
