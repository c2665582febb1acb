/** Query limits, owned by the search layer (the API validates against the same numbers). */
export const SEARCH_LIMITS = {
  maxK: 100,
  maxCandidates: 200,
  defaultCandidates: 16,
  maxTextChars: 1000,
} as const;

export class SearchError extends Error {
  constructor(
    readonly code: 'k_too_large' | 'candidates_too_large' | 'rerank_rule_unsupported' | 'query_invalid' | 'image_not_found' | 'no_embedding',
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}
