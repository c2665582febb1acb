import { z } from '@hono/zod-openapi';
import type { Collection as Row } from '../../../db/queries/collections.ts';
import { iso, Timestamp, Uuid } from '../../schemas.ts';
import { Job } from '../jobs/schema.ts';

const ModelRef = z.string().min(1).max(200).openapi({ description: 'A registered model id, `name@version`', example: 'mira-blip@1' });

const Hnsw = z.strictObject({
  m: z.number().int().min(4).max(64).default(16),
  efConstruction: z.number().int().min(16).max(2000).default(200),
  efSearch: z.number().int().min(1).max(2000).default(64),
});

export const CreateCollection = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-", starting with a letter or digit')
      .openapi({ example: 'products' }),
    embedder: ModelRef.optional().openapi({ description: 'The model the collection is searched by; default: the active model' }),
    reranker: ModelRef.nullable().optional().openapi({ description: 'A BLIP model for ITM re-ranking' }),
    captioner: ModelRef.nullable().optional().openapi({ description: 'A BLIP model for captions' }),
    hnsw: Hnsw.optional(),
  })
  .openapi('CreateCollection');

export const Collection = z
  .object({
    id: Uuid,
    name: z.string(),
    embedder: z.string(),
    reranker: z.string().nullable(),
    captioner: z.string().nullable(),
    pendingEmbedder: z.string().nullable().openapi({ description: 'The version a re-extraction is filling (searches still use `embedder`)' }),
    reextractionJob: z.string().nullable().openapi({ description: 'The job filling `pendingEmbedder`' }),
    previousEmbedder: z.string().nullable().openapi({ description: 'The version searched before the last switch: the target of a rollback' }),
    dim: z.number().int().openapi({ description: "The embedder's vector size" }),
    hnsw: z.object({ m: z.number().int(), efConstruction: z.number().int(), efSearch: z.number().int() }),
    createdAt: Timestamp,
  })
  .openapi('Collection');
export type Collection = z.infer<typeof Collection>;

export const CollectionList = z.object({ items: z.array(Collection) }).openapi('CollectionList');

export function toCollection(c: Row): Collection {
  return {
    id: c.id,
    name: c.name,
    embedder: c.embedder,
    reranker: c.reranker,
    captioner: c.captioner,
    pendingEmbedder: c.pendingEmbedder,
    reextractionJob: c.pendingJobId,
    previousEmbedder: c.previousEmbedder,
    dim: c.dim,
    hnsw: { m: c.hnswM, efConstruction: c.hnswEfConstruction, efSearch: c.hnswEfSearch },
    createdAt: iso(c.createdAt),
  };
}

export const ModelParam = z.strictObject({
  id: Uuid.openapi({ param: { name: 'id', in: 'path' } }),
  model: ModelRef.openapi({ param: { name: 'model', in: 'path' } }),
});

export const Reextract = z.strictObject({ model: ModelRef.openapi({ description: 'The embedder version to re-extract the collection with' }) }).openapi('Reextract');

export const Reextraction = z
  .object({ collection: Collection, job: Job })
  .openapi('Reextraction', { description: 'The collection (its `pendingEmbedder` is being filled) and the job doing it' });
export type Reextraction = z.infer<typeof Reextraction>;
