export { MiraClient, toBlob, type Image, type ImageInput, type IngestResult, type Job, type JobProgress, type MiraClientOptions, type Schemas } from './client.ts';
export { MiraApiError, type Problem } from './errors.ts';
export type { components, operations, paths } from './schema.ts';
