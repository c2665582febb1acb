export { MiraClient, toBlob, type ImageInput, type Job, type JobProgress, type MiraClientOptions, type Schemas } from './client.ts';
export { MiraApiError, type Problem } from './errors.ts';
export type { components, operations, paths } from './schema.ts';
