import { z } from 'zod';

/** Items embedded by one durable step: a crash loses at most one chunk of work. */
export const DEFAULT_CHUNK = 256;
export const MAX_INLINE_ENTRIES = 10_000;

const metadata = z.record(z.string(), z.unknown());
export const extractEntry = z.union([
  z.strictObject({ path: z.string().min(1).max(4096), metadata: metadata.optional() }),
  z.strictObject({ url: z.string().min(1).max(4096), metadata: metadata.optional() }),
]);

/**
 * What is extracted: a collection's ready images (their stored vectors), a server-side path under
 * MIRA_INGEST_ROOT (a file, a folder or a `.jsonl` manifest), or manifest entries given inline.
 */
export const extractSource = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('collection'), collectionId: z.string().uuid() }),
  z.strictObject({ kind: z.literal('path'), path: z.string().min(1).max(4096) }),
  z.strictObject({ kind: z.literal('entries'), entries: z.array(extractEntry).min(1).max(MAX_INLINE_ENTRIES) }),
]);

export const extractPayload = z.strictObject({
  source: extractSource,
  /** The embedder: a collection's own for a collection (and for files named with one), else this or the active model. */
  modelId: z.string().min(1).max(200),
  /** For files: caption each with the model's captioner (a collection's stored captions are always written). */
  captions: z.boolean().default(false),
  chunkSize: z.number().int().min(1).max(4096).default(DEFAULT_CHUNK),
});
export type ExtractPayload = z.infer<typeof extractPayload>;
export type ExtractSource = z.infer<typeof extractSource>;
