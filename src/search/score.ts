import type { ItmScore } from '../inference/runtime.ts';

/**
 * Weight of the LM term. Chosen on the validation split (seed 2, contrast 0.9) with models/default:
 * t2i re-rank R@1 was 0.997 for every weight in 0.25..1 and 0.993 at 0.1 (TRAINING.md, "Re-ranking").
 */
export const LM_WEIGHT = 0.5;

export const RERANK_RULES = ['itm', 'itm+lm'] as const;
export type RerankRule = (typeof RERANK_RULES)[number];

/**
 * The re-ranking score, the one function the search API, the evaluation and the demo rank by.
 * - `itm`: BLIP's rule (its retrieval evaluation): the ITM match logit plus the ITC cosine.
 * - `itm+lm`: that plus LM_WEIGHT × the decoder's log-likelihood of the query text as a caption of the
 *   image (`Runtime.captionLogLikelihoods`), given whenever `lm` is.
 */
export const rerankScore = (itm: ItmScore, itcCosine: number, lm?: number): number =>
  itm.logit + itcCosine + (lm === undefined ? 0 : LM_WEIGHT * lm);
