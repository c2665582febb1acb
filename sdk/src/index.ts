export { MiraClient, toBlob, type Image, type ImageInput, type IngestResult, type Job, type JobListQuery, type JobProgress, type MiraClientOptions, type Schemas, type SearchParams, type SearchResponse } from './client.ts';
export { MiraApiError, type Problem } from './errors.ts';
export type { components, operations, paths } from './schema.ts';
