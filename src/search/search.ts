import type { Db } from '../db/client.ts';
import type { Collection } from '../db/queries/collections.ts';
import { labelsForImages, vectorsForLabels, imagesForLabels } from '../db/queries/embeddings.ts';
import { getImage, imagesByIds, updateImage, type Image } from '../db/queries/images.ts';
import type { TokenSource } from '../features/store.ts';
import type { Runtime } from '../inference/runtime.ts';
import { allowedLabels, type IndexRegistry, type MetadataFilter } from '../index/index.ts';
import type { BlobStore } from '../storage/blob.ts';
import { SEARCH_LIMITS, SearchError } from './limits.ts';
import { rerankScore, type RerankRule } from './score.ts';

export interface SearchDeps {
  db: Db;
  indexes: IndexRegistry;
  tokens: TokenSource;
  blobs: BlobStore;
  runtime(modelId: string): Promise<Runtime>;
}

export type SearchQuery = { text: string } | { image: Uint8Array } | { imageId: string };

export interface SearchRequest {
  collection: Collection;
  query: SearchQuery;
  k: number;
  filter?: MetadataFilter;
  /**
   * Default: on when the collection has a reranker and the query is text, by the rule `itm+lm` where the
   * reranker's decoder reads its ITM tokens, else `itm` (src/search/score.ts).
   */
  rerank?: { enabled?: boolean; candidates?: number; rule?: RerankRule };
  captions?: boolean;
  ef?: number;
}

export interface SearchHit {
  image: Image;
  /** What the results are ordered by: ITC alone, or `rerankScore` when re-ranked. */
  score: number;
  /** Cosine similarity of the ITC / CLIP features. */
  itcScore: number;
  /** ITM match probability, when re-ranked. */
  itmScore?: number;
  /** The decoder's log-likelihood of the query as this image's caption, when re-ranked by `itm+lm`. */
  lmScore?: number;
}

export interface SearchResult {
  hits: SearchHit[];
  reranked: boolean;
  /** The re-ranking rule, when re-ranked. */
  rerankRule?: RerankRule;
  model: string;
}

/**
 * The query pipeline: embed the query, take candidates from the HNSW index (a metadata filter is
 * resolved in Postgres first), re-rank them with ITM when asked, join their rows from Postgres.
 */
export async function search(deps: SearchDeps, req: SearchRequest): Promise<SearchResult> {
  const { collection, k } = req;
  if (!Number.isInteger(k) || k < 1 || k > SEARCH_LIMITS.maxK) throw new SearchError('k_too_large', `k must be 1..${SEARCH_LIMITS.maxK}, got ${k}`);
  const isText = 'text' in req.query;
  const rerank = isText && !!collection.reranker && (req.rerank?.enabled ?? true);
  const candidates = rerank ? Math.max(k, req.rerank?.candidates ?? SEARCH_LIMITS.defaultCandidates) : k;
  if (candidates > SEARCH_LIMITS.maxCandidates) {
    throw new SearchError('candidates_too_large', `rerank.candidates must be at most ${SEARCH_LIMITS.maxCandidates}, got ${candidates}`);
  }

  // A re-extraction's shadow index: opened (and followed) before the switch, so the switch finds it warm.
  if (collection.pendingEmbedder) deps.indexes.get(collection.id, collection.pendingEmbedder).catch(() => undefined);
  const embedder = await deps.runtime(collection.embedder);
  const { vector, exclude } = await queryVector(deps, embedder, req);
  const index = await deps.indexes.get(collection.id, collection.embedder);
  // Just switched to another version: this process may follow its index a moment behind; catch up first.
  if (collection.switchedAtSeq) await index.catchUp(collection.switchedAtSeq);
  const allowed = req.filter ? await allowedLabels(deps.db, collection.id, collection.embedder, req.filter) : undefined;
  const hits = index
    .search(vector, candidates + (exclude ? 1 : 0), { ...(allowed ? { allowedLabels: allowed } : {}), ...(req.ef ? { ef: req.ef } : {}) })
    .filter((h) => h.label !== exclude);

  // The index may still hold a label Postgres has just deleted: only live rows come back.
  const idsByLabel = await imagesForLabels(deps.db, hits.map((h) => h.label));
  const live = hits.flatMap((h) => {
    const id = idsByLabel.get(h.label);
    return id ? [{ id, itc: h.score }] : [];
  });
  const rows = await imagesByIds(deps.db, collection.id, live.map((h) => h.id));
  let ranked: SearchHit[] = live.flatMap((h) => {
    const image = rows.get(h.id);
    return image ? [{ image, score: h.itc, itcScore: h.itc }] : [];
  });

  let rule: RerankRule | undefined;
  if (rerank) {
    const reranker = await deps.runtime(collection.reranker!);
    rule = req.rerank?.rule ?? (reranker.decoderReadsItmTokens ? 'itm+lm' : 'itm');
    if (rule === 'itm+lm' && !reranker.decoderReadsItmTokens) {
      throw new SearchError('rerank_rule_unsupported', `rerank.rule itm+lm needs a reranker whose decoder reads its ITM tokens; ${reranker.id} has ${reranker.manifest.graphs.decoder ? 'a separate caption encoder' : 'no decoder'}`);
    }
    if (ranked.length > 0) ranked = await rescore(deps, collection.reranker!, reranker, rule, (req.query as { text: string }).text, ranked);
  }
  ranked = ranked.slice(0, k);
  if (req.captions && collection.captioner) await fillCaptions(deps, collection.captioner, ranked.map((r) => r.image));
  return { hits: ranked, reranked: rerank, ...(rule ? { rerankRule: rule } : {}), model: collection.embedder };
}

/** Scores every candidate by `rule` against the query text, best first. */
async function rescore(deps: SearchDeps, modelId: string, reranker: Runtime, rule: RerankRule, text: string, hits: SearchHit[]): Promise<SearchHit[]> {
  const tokens = await deps.tokens.tokensFor(modelId, hits.map((r) => r.image.id));
  const [itm, lm] = await Promise.all([
    reranker.itmScores(text, tokens),
    rule === 'itm+lm' ? reranker.captionLogLikelihoods(tokens.map(() => text), tokens) : undefined,
  ]);
  return hits
    .map((r, i) => ({ ...r, score: rerankScore(itm[i]!, r.itcScore, lm?.[i]), itmScore: itm[i]!.prob, ...(lm ? { lmScore: lm[i]! } : {}) }))
    .sort((a, b) => b.score - a.score);
}

async function queryVector(deps: SearchDeps, embedder: Runtime, req: SearchRequest): Promise<{ vector: Float32Array; exclude?: number }> {
  const q = req.query;
  if ('text' in q) {
    const text = q.text.trim();
    if (!text || text.length > SEARCH_LIMITS.maxTextChars) throw new SearchError('query_invalid', `text must be 1..${SEARCH_LIMITS.maxTextChars} characters`);
    return { vector: (await embedder.embedTexts([text]))[0]! };
  }
  if ('image' in q) return { vector: (await embedder.embedImages([q.image]))[0]!.feat };
  const image = await getImage(deps.db, q.imageId, { collectionId: req.collection.id });
  if (!image) throw new SearchError('image_not_found', `no image ${q.imageId} in collection ${req.collection.name}`, 404);
  const label = (await labelsForImages(deps.db, { modelId: req.collection.embedder, imageIds: [image.id] })).get(image.id);
  const vector = label === undefined ? undefined : (await vectorsForLabels(deps.db, [label])).get(label);
  if (!vector || label === undefined) throw new SearchError('no_embedding', `image ${image.id} has no ${req.collection.embedder} embedding yet (status ${image.status})`, 409);
  return { vector, exclude: label };
}

/** Captions the results that have none yet, and keeps them. */
async function fillCaptions(deps: SearchDeps, captioner: string, images: Image[]): Promise<void> {
  const missing = images.filter((i) => !i.caption);
  if (missing.length === 0) return;
  const rt = await deps.runtime(captioner);
  await Promise.all(
    missing.map(async (image) => {
      const bytes = await deps.blobs.get(image.sha256, 'original');
      if (!bytes) return;
      const c = await rt.caption(bytes);
      image.caption = c.text;
      image.captionModel = captioner;
      await updateImage(deps.db, image.id, { caption: c.text, captionModel: captioner });
    }),
  );
}
