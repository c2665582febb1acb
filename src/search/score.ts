import type { ItmScore } from '../inference/runtime.ts';

/**
 * BLIP's re-ranking score (its retrieval evaluation): the ITM match logit plus the ITC cosine.
 * The search API, the evaluation and the demo all rank by this one function.
 */
export const blipScore = (itm: ItmScore, itcCosine: number): number => itm.logit + itcCosine;
