export { collections } from './collections.ts';
export { changeSeq, embeddings } from './embeddings.ts';
export { images, imageStatus } from './images.ts';
export { jobKinds, jobStates, jobs, listedJobKinds } from './jobs.ts';
export { models } from './models.ts';
export { apiKeys, apiKeyScopes } from './api-keys.ts';
