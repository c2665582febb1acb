import type { Context } from 'hono';
import { search, type SearchQuery } from '../../../search/search.ts';
import type { ApiEnv } from '../../types.ts';
import { visibleCollection } from '../collections/get.ts';
import { toResult, type SearchResponse } from './schema.ts';

export interface SearchInput {
  collectionId: string;
  k: number;
  filter?: Record<string, unknown> | undefined;
  rerank?: { enabled?: boolean | undefined; candidates?: number | undefined } | undefined;
  captions?: boolean | undefined;
}

/** Runs the search pipeline for a collection this key can see. */
export async function runSearch(c: Context<ApiEnv>, input: SearchInput, query: SearchQuery): Promise<SearchResponse> {
  const start = performance.now();
  const collection = await visibleCollection(c, input.collectionId);
  const ctx = c.var.ctx;
  const rerank = input.rerank ? { ...(input.rerank.enabled === undefined ? {} : { enabled: input.rerank.enabled }), ...(input.rerank.candidates === undefined ? {} : { candidates: input.rerank.candidates }) } : undefined;
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
  return { results: result.hits.map(toResult), reranked: result.reranked, model: result.model, tookMs: Math.round((performance.now() - start) * 100) / 100 };
}
