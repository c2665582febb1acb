import { z } from '@hono/zod-openapi';
import type { Model as Row } from '../../../db/queries/models.ts';
import { iso, Timestamp } from '../../schemas.ts';

export const ModelIdParam = z.strictObject({
  id: z
    .string()
    .min(1)
    .max(200)
    .openapi({ param: { name: 'id', in: 'path' }, description: '`name@version`', example: 'mira-blip@1' }),
});

export const RegisterModel = z
  .strictObject({
    path: z.string().min(1).max(4096).openapi({ description: "A bundle folder on the server's disk (holding manifest.json)", example: '/models/mira-blip' }),
  })
  .openapi('RegisterModel');

export const Model = z
  .object({
    id: z.string().openapi({ example: 'mira-blip@1' }),
    name: z.string(),
    version: z.string(),
    family: z.enum(['blip', 'clip']),
    embedDim: z.number().int(),
    active: z.boolean().openapi({ description: 'Whether new collections use it by default' }),
    checksum: z.string().openapi({ description: 'sha256 over the manifest, tokenizer and graphs' }),
    graphs: z.array(z.string()).openapi({ description: 'The graphs the bundle has: vision, text, itm (re-ranking), decoder (captions)…' }),
    registeredAt: Timestamp,
  })
  .openapi('Model');
export type Model = z.infer<typeof Model>;

export const ModelList = z.object({ items: z.array(Model) }).openapi('ModelList');

export function toModel(m: Row): Model {
  const graphs = (m.manifest as { graphs?: Record<string, unknown> } | null)?.graphs ?? {};
  return {
    id: m.id,
    name: m.name,
    version: m.version,
    family: m.family,
    embedDim: m.embedDim,
    active: m.active,
    checksum: m.checksum,
    graphs: Object.keys(graphs).filter((g) => graphs[g]).sort(),
    registeredAt: iso(m.registeredAt),
  };
}
