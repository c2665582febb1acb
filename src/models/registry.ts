import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { readManifest } from '../inference/bundle.ts';
import type { Manifest } from '../inference/manifest.ts';
import type { Db } from '../db/client.ts';
import { registerModel, setModelPath, type Model } from '../db/queries/models.ts';
import { InferencePool } from '../inference/pool.ts';
import { Runtime, type RuntimeOptions } from '../inference/runtime.ts';

/** sha256 over the manifest, the tokenizer and every graph, in a fixed order. */
export async function bundleChecksum(dir: string, manifest?: Manifest): Promise<string> {
  const m = manifest ?? (await readManifest(dir));
  const files = ['manifest.json', m.tokenizer.file, ...Object.values(m.graphs).flatMap((g) => (g ? [g.file] : []))].sort();
  const hash = createHash('sha256');
  for (const f of files) {
    hash.update(`${f}\0`);
    for await (const chunk of createReadStream(join(dir, f))) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/**
 * The folder of a registered model, once its files are checked to be the registered bytes: a
 * bundle replaced in place (new weights under the same name@version) would otherwise embed queries
 * with another model than the one its collections were indexed with, silently.
 */
export async function verifiedBundlePath(model: Pick<Model, 'id' | 'path' | 'checksum'>): Promise<string> {
  const now = await bundleChecksum(model.path).catch(() => null);
  if (now === model.checksum) return model.path;
  throw new BundleUnavailable(
    model.id,
    `model ${model.id}: ${now ? `the files at ${model.path} changed since it was registered` : `no readable bundle at ${model.path}`}; ` +
      'restore them, or register the new files under a new version and move the collections to it (mira models activate NAME@VERSION)',
  );
}

/** A registered model whose files are gone or changed (after an upgrade replaced them, say). */
export class BundleUnavailable extends Error {
  constructor(
    readonly modelId: string,
    message: string,
  ) {
    super(message);
    this.name = 'BundleUnavailable';
  }
}

/**
 * Registers a bundle folder (idempotent for the same bytes; a changed bundle under an old version is
 * a Conflict). The same bytes registered from a new folder while the recorded one is gone (the
 * install moved, a checkout was deleted) move the record to the new folder.
 */
export async function registerBundle(db: Db, dir: string): Promise<{ model: Model; created: boolean }> {
  const path = resolve(dir);
  const manifest = await readManifest(path);
  const checksum = await bundleChecksum(path, manifest);
  const r = await registerModel(db, { name: manifest.name, version: manifest.version, family: manifest.family, path, checksum, embedDim: manifest.embedDim, manifest });
  if (r.created || r.model.path === path) return r;
  const stillThere = await access(join(r.model.path, 'manifest.json')).then(() => true, () => false);
  return stillThere ? r : { model: await setModelPath(db, r.model.id, path), created: false };
}

/**
 * Open runtimes by model id, shared by everything in the process. All of them run on one worker
 * pool, so two models do not double the threads; each is opened on first use.
 */
export class RuntimeCache {
  private readonly open = new Map<string, Promise<Runtime>>();
  private readonly pool: InferencePool;

  constructor(private readonly opts: RuntimeOptions) {
    this.pool = new InferencePool(opts);
  }

  get(id: string, dir: string): Promise<Runtime> {
    let rt = this.open.get(id);
    if (!rt) {
      rt = Runtime.open(resolve(dir), { ...this.opts, pool: this.pool }).then((r) => {
        if (r.id !== id) throw new Error(`${dir}: the bundle is ${r.id}, not ${id}`);
        return r;
      });
      this.open.set(id, rt);
      rt.catch(() => this.open.delete(id));
    }
    return rt;
  }

  /** Runtimes already open (metrics, readiness). */
  async loaded(): Promise<Runtime[]> {
    const all = await Promise.allSettled(this.open.values());
    return all.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  }

  async close(): Promise<void> {
    const all = await this.loaded();
    this.open.clear();
    await Promise.all(all.map((r) => r.close()));
    await this.pool.close();
  }
}
