/**
 * What `mira ingest` and `mira search` need from Mira, in two implementations: the embedded store
 * opened in this process (backends/embedded.ts) or a running server through the SDK
 * (backends/api.ts, with `--api URL` or MIRA_API_URL). The commands count, print and summarise the
 * same way whichever answers.
 */
import type { ExpandedSource } from '../ingest/expand.ts';
import type { RerankRule } from '../search/score.ts';
import { UsageError } from './command.ts';

export interface CollectionRef {
  id: string;
  name: string;
}

export interface Ingested {
  imageId: string;
  /** False when the collection already held these bytes. */
  created: boolean;
}

export interface Settled {
  ready: number;
  failed: number;
  /** Still pending when the wait ran out. */
  pending: number;
}

export interface SettleOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  onProgress?: (ended: number) => void;
}

export interface SearchParams {
  text: string;
  k: number;
  filter?: Record<string, unknown>;
  rerank: { enabled: boolean; candidates: number; rule?: RerankRule };
  captions: boolean;
}

export interface SearchRow {
  id: string;
  score: number;
  itcScore: number;
  itmScore?: number;
  lmScore?: number;
  source: string;
  caption: string | null;
  metadata: unknown;
}

export interface SearchOutput {
  reranked: boolean;
  rerankRule?: RerankRule;
  model: string;
  results: SearchRow[];
}

/** How a search's results are ordered, for people: "ITC", "ITC, re-ranked with ITM" or "… ITM + LM". */
export function rankingLabel(out: Pick<SearchOutput, 'reranked' | 'rerankRule'>): string {
  return out.reranked ? `ITC, re-ranked with ${out.rerankRule === 'itm+lm' ? 'ITM + LM' : 'ITM'}` : 'ITC';
}

export interface Backend {
  /** The named collection; with `create`, made with the default model when missing. */
  collection(name: string, opts: { create: boolean }): Promise<CollectionRef | undefined>;
  /**
   * Stores one image and queues its extraction. Bad input rejects with Refused (counted, the run
   * goes on); anything else (auth, a server down) rejects with another error and ends the run.
   * `root` is the folder path sources are read under.
   */
  ingest(collection: CollectionRef, source: ExpandedSource['source'], root: string): Promise<Ingested>;
  /**
   * Waits up to `timeoutMs` (or until `signal` aborts) for the collection's images to be extracted
   * and counts how they ended; `onProgress` hears how many have ended (ready or failed).
   */
  settle(collection: CollectionRef, imageIds: string[], opts: SettleOptions): Promise<Settled>;
  search(collection: CollectionRef, params: SearchParams): Promise<SearchOutput>;
  close(): Promise<void>;
}

/** An image refused for its input, with the stable code (the API's problem code, or the pipeline's). */
export class Refused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const apiFlags = {
  api: { type: 'string' },
} as const;

export const apiHelp = `With --api URL (or MIRA_API_URL) it talks to a running server instead, with the key in
MIRA_API_KEY; without, it opens the embedded store in MIRA_DATA_DIR (or Postgres with DATABASE_URL).`;

/** The server named by --api or MIRA_API_URL, else the store opened in this process. */
export async function openBackend(flags: { api?: string | undefined }): Promise<Backend> {
  const url = flags.api ?? (process.env.MIRA_API_URL || undefined);
  // Imported on demand: the embedded store loads the models and the database, the client neither.
  if (url === undefined) {
    const { EmbeddedBackend } = await import('./backends/embedded.ts');
    return EmbeddedBackend.open();
  }
  if (!/^https?:\/\/[^/]/i.test(url)) throw new UsageError(`--api must be an http(s) URL, got "${url}"`);
  const { ApiBackend } = await import('./backends/api.ts');
  return new ApiBackend(url, process.env.MIRA_API_KEY || undefined);
}

/** Runs `fn` over `items` with at most `concurrency` at once, in order of start. */
export async function forEachBounded<T>(items: readonly T[], concurrency: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}
