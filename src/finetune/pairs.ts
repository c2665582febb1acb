import { link, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Db } from '../db/client.ts';
import { getImageBySha256, imagesByIds, listImages, type Image } from '../db/queries/images.ts';
import type { BlobStore } from '../storage/blob.ts';

/** Where a fine-tuning job's image–caption pairs come from. */
export type PairSource =
  /**
   * The collection's ready images with their captions. A caption a person set through the metadata
   * API (`metadata.caption`, PATCH /v1/images/{id}) wins over the model's; `include: 'edited'`
   * keeps only images that have one.
   */
  | { kind: 'captions'; include?: 'all' | 'edited' }
  /** Uploaded pairs, already resolved to images of the collection. */
  | { kind: 'pairs'; pairs: { imageId: string; caption: string }[] };

export interface Pair {
  imageId: string;
  sha256: string;
  caption: string;
}

/** A person's caption for the image, when its metadata holds one. */
export function editedCaption(image: Pick<Image, 'metadata'>): string | undefined {
  const c = (image.metadata as Record<string, unknown> | null)?.caption;
  return typeof c === 'string' && c.trim() ? c.trim() : undefined;
}

/** The pairs the source names, among the collection's live, ready images; `skipped` counts the rest. */
export async function collectPairs(db: Db, collectionId: string, source: PairSource): Promise<{ pairs: Pair[]; skipped: number }> {
  const pairs: Pair[] = [];
  let skipped = 0;
  if (source.kind === 'pairs') {
    const ids = [...new Set(source.pairs.map((p) => p.imageId))];
    const found = new Map<string, Image>();
    for (let i = 0; i < ids.length; i += 1000) for (const [id, img] of await imagesByIds(db, collectionId, ids.slice(i, i + 1000))) found.set(id, img);
    for (const p of source.pairs) {
      const img = found.get(p.imageId);
      if (img?.status === 'ready') pairs.push({ imageId: img.id, sha256: img.sha256, caption: p.caption });
      else skipped++;
    }
    return { pairs, skipped };
  }
  let cursor: string | undefined;
  do {
    const page = await listImages(db, { collectionId, status: 'ready', limit: 1000, ...(cursor ? { cursor } : {}) });
    for (const img of page.items) {
      const caption = editedCaption(img) ?? (source.include === 'edited' ? undefined : img.caption?.trim() || undefined);
      if (caption) pairs.push({ imageId: img.id, sha256: img.sha256, caption });
      else skipped++;
    }
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return { pairs, skipped };
}

/**
 * Writes the trainer's pairs.jsonl into `dir`: `{"image": absolute path, "caption"}` per pair. Each
 * original is hard-linked into `dir/images` (copied where the store has no local path or the link
 * would cross filesystems), so an image deleted while the trainer runs keeps its file until the
 * job is done. Pairs whose original is already gone (the image was deleted after the pairs were
 * listed, and its blob purged) are left out and counted in `dropped`.
 */
export async function writePairsFile(blobs: BlobStore, pairs: Pair[], dir: string): Promise<{ file: string; dropped: number }> {
  const images = join(dir, 'images');
  await mkdir(images, { recursive: true });
  const present = new Set<string>();
  for (const sha of new Set(pairs.map((p) => p.sha256))) {
    const file = join(images, sha);
    if (blobs.path) {
      const linked = await link(blobs.path(sha, 'original'), file).then(
        () => true,
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return false;
          if (err.code === 'EXDEV' || err.code === 'EPERM') return undefined; // copy instead
          throw err;
        },
      );
      if (linked !== undefined) {
        if (linked) present.add(sha);
        continue;
      }
    }
    const bytes = await blobs.get(sha, 'original');
    if (!bytes) continue;
    await writeFile(file, bytes);
    present.add(sha);
  }
  const kept = pairs.filter((p) => present.has(p.sha256));
  const file = join(dir, 'pairs.jsonl');
  await writeFile(file, kept.map((p) => JSON.stringify({ image: join(images, p.sha256), caption: p.caption })).join('\n') + '\n');
  return { file, dropped: pairs.length - kept.length };
}

/** A pair that names no image of the collection: `index` is its place in the request. */
export class UnknownPairImage extends Error {
  constructor(
    readonly index: number,
    message: string,
  ) {
    super(message);
  }
}

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * Resolves pairs that name their image by id or by the sha256 of its bytes to image ids of the
 * collection; the first that names none throws UnknownPairImage.
 */
export async function resolvePairImages(db: Db, collectionId: string, refs: { image: string; caption: string }[]): Promise<{ imageId: string; caption: string }[]> {
  const ids = [...new Set(refs.map((r) => r.image).filter((r) => !SHA256.test(r)))];
  const byId = new Map<string, string>();
  for (let i = 0; i < ids.length; i += 1000) for (const id of (await imagesByIds(db, collectionId, ids.slice(i, i + 1000))).keys()) byId.set(id, id);
  for (const sha of new Set(refs.map((r) => r.image).filter((r) => SHA256.test(r)))) {
    const img = await getImageBySha256(db, collectionId, sha);
    if (img) byId.set(sha, img.id);
  }
  return refs.map((r, index) => {
    const imageId = byId.get(r.image);
    if (!imageId) throw new UnknownPairImage(index, `no image ${r.image} in the collection (give an image id or the sha256 of an image already ingested)`);
    return { imageId, caption: r.caption };
  });
}
