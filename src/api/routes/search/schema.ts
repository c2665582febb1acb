import { z } from '@hono/zod-openapi';
import type { SearchHit } from '../../../search/search.ts';
import { SEARCH_LIMITS } from '../../../search/limits.ts';
import { LM_WEIGHT, RERANK_RULES } from '../../../search/score.ts';
import { Uuid } from '../../schemas.ts';
import { Metadata } from '../images/schema.ts';

/** Everything but the query itself: shared by the JSON body and the multipart `params` field. */
export const searchParams = {
  collectionId: Uuid,
  k: z.number().int().min(1).max(SEARCH_LIMITS.maxK).default(10).openapi({ description: `Results wanted, at most ${SEARCH_LIMITS.maxK}` }),
  filter: Metadata.optional().openapi({ description: 'Only images whose metadata contains this object' }),
  rerank: z
    .strictObject({
      enabled: z.boolean().optional().openapi({ description: 'Default: on when the collection has a reranker (text queries)' }),
      candidates: z.number().int().min(1).max(SEARCH_LIMITS.maxCandidates).optional().openapi({ description: `Candidates scored with ITM, at most ${SEARCH_LIMITS.maxCandidates}` }),
      rule: z.enum(RERANK_RULES).optional().openapi({
        description:
          `\`itm\`: BLIP's rule, ITM logit + ITC cosine. \`itm+lm\`: that + ${LM_WEIGHT} × the decoder's log-likelihood of the query as the image's caption. ` +
          "Default: `itm+lm` where the reranker's decoder reads its ITM image tokens, else `itm`; asking for `itm+lm` elsewhere is a 400 (rerank_rule_unsupported)",
      }),
    })
    .optional(),
  captions: z.boolean().optional().openapi({ description: "Caption results that have none, with the collection's captioner" }),
};

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export const SearchRequest = z
  .strictObject({
    ...searchParams,
    text: z.string().min(1).max(SEARCH_LIMITS.maxTextChars).optional(),
    imageId: Uuid.optional().openapi({ description: 'Search by an image already in the collection' }),
    image: z.string().regex(BASE64, 'must be base64').optional().openapi({ description: 'A query image, base64 (or use multipart)' }),
  })
  .superRefine((r, ctx) => {
    const given = (['text', 'imageId', 'image'] as const).filter((f) => r[f] !== undefined);
    if (given.length !== 1) ctx.addIssue({ code: 'custom', path: given.length ? [given[1]!] : [], message: 'give exactly one of text, imageId or image' });
  })
  .openapi('SearchRequest');
export type SearchRequest = z.infer<typeof SearchRequest>;

export const SearchParams = z.strictObject(searchParams);

export const SearchResultItem = z
  .object({
    id: Uuid,
    score: z.number().openapi({ description: 'What results are ordered by: ITC cosine, or the re-ranking rule when re-ranked' }),
    itcScore: z.number(),
    itmScore: z.number().optional().openapi({ description: 'ITM match probability, when re-ranked' }),
    lmScore: z.number().optional().openapi({ description: "The decoder's log-likelihood of the query as this image's caption, when re-ranked by itm+lm" }),
    caption: z.string().nullable(),
    metadata: Metadata,
    source: z.string().openapi({ description: 'Where the image came from: `upload:<filename>`, a URL, or a path under the ingest root' }),
    thumbnailUrl: z.string(),
  })
  .openapi('SearchResultItem');

export const SearchResponse = z
  .object({
    results: z.array(SearchResultItem),
    reranked: z.boolean(),
    rerankRule: z.enum(RERANK_RULES).optional().openapi({ description: 'The re-ranking rule, when re-ranked' }),
    model: z.string().openapi({ description: 'The embedder the collection was searched with' }),
    tookMs: z.number(),
  })
  .openapi('SearchResponse');
export type SearchResponse = z.infer<typeof SearchResponse>;

export function toResult(h: SearchHit): z.infer<typeof SearchResultItem> {
  return {
    id: h.image.id,
    score: h.score,
    itcScore: h.itcScore,
    ...(h.itmScore === undefined ? {} : { itmScore: h.itmScore }),
    ...(h.lmScore === undefined ? {} : { lmScore: h.lmScore }),
    caption: h.image.caption,
    metadata: h.image.metadata as Record<string, unknown>,
    source: h.image.source,
    thumbnailUrl: `/v1/images/${h.image.id}/thumbnail`,
  };
}
