export { dropCollectionFiles } from './files.ts';
export { allowedLabels, type MetadataFilter } from './filter.ts';
export type { SearchHit } from './exact.ts';
export type { OpenedBy } from './load.ts';
export { IndexRegistry, type RegistryOptions } from './registry.ts';
export { EXACT_MAX_ALLOWED, HnswStore, type HnswParams, type SearchOptions, type Space } from './store.ts';
export type { IndexLogger, IndexStep, OpenIndexOptions, SyncResult } from './options.ts';
export { VectorIndex } from './vector-index.ts';
