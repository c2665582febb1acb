import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Db } from '../db/client.ts';
import { getCollection } from '../db/queries/collections.ts';
import { listImages } from '../db/queries/images.ts';
import { IngestError } from '../ingest/errors.ts';
import { expandPath } from '../ingest/expand.ts';
import type { IngestLimits } from '../ingest/limits.ts';
import { PermanentJobError } from '../jobs/types.ts';
import { writeDurably } from '../storage/blob.ts';
import type { ExtractSource } from './payload.ts';

type Metadata = Record<string, unknown>;

/** One row to be: a stored image, or a file or URL read like an ingested one. */
export type PlanItem =
  | { imageId: string; sha256: string; source: string; metadata: Metadata; caption: string | null }
  | { path: string; metadata?: Metadata; line?: number }
  | { url: string; metadata?: Metadata; line?: number };

const PAGE = 1000;

/**
 * The items in row order, fixed at the first try (plan.json): a resumed try walks the same list,
 * whatever was ingested or deleted meanwhile. A collection's ready images are taken in creation
 * order (created_at, id); files in the order of the manifest or of the sorted folder walk.
 */
export async function loadOrMakePlan(deps: { db: Db; limits: IngestLimits }, source: ExtractSource, dir: string): Promise<PlanItem[]> {
  const file = join(dir, 'plan.json');
  const saved = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (saved !== undefined) return JSON.parse(saved) as PlanItem[];
  const plan = await makePlan(deps, source);
  await writeDurably(file, Buffer.from(JSON.stringify(plan)));
  return plan;
}

async function makePlan(deps: { db: Db; limits: IngestLimits }, source: ExtractSource): Promise<PlanItem[]> {
  switch (source.kind) {
    case 'collection': {
      if (!(await getCollection(deps.db, { id: source.collectionId }))) throw new PermanentJobError(`no collection ${source.collectionId}`, 'not_found');
      const items: PlanItem[] = [];
      let cursor: string | undefined;
      do {
        const page = await listImages(deps.db, { collectionId: source.collectionId, status: 'ready', limit: PAGE, ...(cursor ? { cursor } : {}) });
        for (const i of page.items) items.push({ imageId: i.id, sha256: i.sha256, source: i.source, metadata: i.metadata as Metadata, caption: i.caption });
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      return items;
    }
    case 'path': {
      const expanded = await expandPath(source.path, deps.limits).catch(permanentIngestError);
      return expanded.map(({ source: s, line }) => ({
        ...(s.kind === 'url' ? { url: s.url } : { path: s.path }),
        ...(s.metadata ? { metadata: s.metadata } : {}),
        ...(line ? { line } : {}),
      }));
    }
    case 'entries':
      return source.entries.map((e, i) => ({ ...e, line: i + 1 }));
  }
}

/** A source that cannot be listed (outside the root, a malformed manifest) will not list on a retry either. */
function permanentIngestError(err: unknown): never {
  if (err instanceof IngestError) throw new PermanentJobError(err.message, err.code);
  throw err;
}
