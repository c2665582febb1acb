import type { Context } from 'hono';
import type { RerankRule } from '../../../search/score.ts';
import { search, type SearchQuery, type SearchRequest } from '../../../search/search.ts';
import type { ApiEnv } from '../../types.ts';
import { visibleCollection } from '../collections/get.ts';
import { toResult, type SearchResponse } from './schema.ts';

export interface SearchInput {
  collectionId: string;
  k: number;
  filter?: Record<string, unknown> | undefined;
  rerank?: { enabled?: boolean | undefined; candidates?: number | undefined; rule?: RerankRule | undefined } | undefined;
  captions?: boolean | undefined;
}

/** Runs the search pipeline for a collection this key can see. */
export async function runSearch(c: Context<ApiEnv>, input: SearchInput, query: SearchQuery): Promise<SearchResponse> {
  const start = performance.now();
  const collection = await visibleCollection(c, input.collectionId);
  const ctx = c.var.ctx;
  const rerank = input.rerank && (Object.fromEntries(Object.entries(input.rerank).filter(([, v]) => v !== undefined)) as SearchRequest['rerank']);
  const result = await search(
    { db: ctx.db, indexes: ctx.indexes, tokens: ctx.tokens, blobs: ctx.blobs, runtime: ctx.runtime },
    {
      collection,
      query,
      k: input.k,
      ...(input.filter ? { filter: input.filter } : {}),
      ...(rerank ? { rerank } : {}),
      ...(input.captions ? { captions: true } : {}),
    },
  );
  return {
    results: result.hits.map(toResult),
    reranked: result.reranked,
    ...(result.rerankRule ? { rerankRule: result.rerankRule } : {}),
    model: result.model,
    tookMs: Math.round((performance.now() - start) * 100) / 100,
  };
}
