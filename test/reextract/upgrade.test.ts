/**
 * Upgrading Mira in place, as a user of the embedded defaults meets it: the data folder was filled
 * with one default model, then the model folder is replaced by a newer version of it (a new
 * release). The old version's files are gone, so its collections cannot be searched until
 * `mira models activate` re-extracts them from the stored originals; after that, search, re-ranking,
 * captions and new ingests all run on the new version.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureCollection } from '../../src/cli/collection.ts';
import { loadEnv } from '../../src/config.ts';
import { createContext, type AppContext } from '../../src/context.ts';
import { getCollection } from '../../src/db/queries/collections.ts';
import { countImagesByStatus, getImage } from '../../src/db/queries/images.ts';
import { ingestImage } from '../../src/ingest/pipeline.ts';
import { createLogger } from '../../src/log.ts';
import { BundleUnavailable } from '../../src/models/registry.ts';
import { activateModel } from '../../src/reextract/start.ts';
import { renderScene, sampleScenes } from '../../src/scenes/index.ts';
import { search } from '../../src/search/search.ts';
import { bundleCopy, TINY_BLIP } from '../inference/helpers.ts';
import { finishedJob } from '../jobs/helpers.ts';
import { eventually } from '../support/context.ts';

const REPO = resolve(import.meta.dirname, '../..');
const log = createLogger('upgrade-test', 'error');

describe('upgrading the default model in place (embedded)', () => {
  const dirs: string[] = [];
  const contexts: AppContext[] = [];
  afterAll(async () => {
    for (const c of contexts) await c.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('the old version cannot be searched once its files are gone; activating the new one re-extracts, and everything runs on it', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mira-upgrade-'));
    const modelDir = join(dataDir, 'model'); // where MIRA_MODEL_DIR points, as models/default does
    dirs.push(dataDir);
    const v1 = await bundleCopy((m) => Object.assign(m, { name: 'upgrade-default', version: '1' }), TINY_BLIP);
    const v2 = await bundleCopy((m) => Object.assign(m, { name: 'upgrade-default', version: '2' }), resolve(REPO, 'models/default'));
    dirs.push(v1.dir, v2.dir);
    const env = loadEnv({ MIRA_DATA_DIR: dataDir, MIRA_MODEL_DIR: modelDir, MIRA_INFERENCE_THREADS: '1' } as NodeJS.ProcessEnv);
    const scenes = sampleScenes(61, 5);
    const ingest = async (ctx: AppContext, i: number) =>
      ingestImage({ db: ctx.db, blobs: ctx.blobs, queue: ctx.queue, limits: ctx.limits }, await ensureCollection(ctx, 'photos'), {
        kind: 'upload',
        bytes: await renderScene(scenes[i]!.scene, { size: 64, layout: scenes[i]!.layout }),
        filename: `${i}.png`,
      });

    // The first release: four images ingested with version 1.
    await cp(v1.dir, modelDir, { recursive: true });
    const before = await createContext({ role: 'api', env, log });
    contexts.push(before);
    for (let i = 0; i < 4; i++) await ingest(before, i);
    const photos = (await getCollection(before.db, { name: 'photos' }))!;
    await eventually('4 images ready', async () => ((await countImagesByStatus(before.db, photos.id)).ready === 4 ? true : undefined), 60_000);
    await before.close();
    contexts.pop();

    // The new release replaces the model folder with version 2.
    await rm(modelDir, { recursive: true });
    await cp(v2.dir, modelDir, { recursive: true });
    const after = await createContext({ role: 'api', env, log });
    contexts.push(after);
    await after.warm(); // logs that the collection's model cannot be loaded, and goes on
    expect(after.defaultModel.id).toBe('upgrade-default@2');
    const stale = (await getCollection(after.db, { id: photos.id }))!;
    expect(stale).toMatchObject({ embedder: 'upgrade-default@1', reranker: 'upgrade-default@1', captioner: 'upgrade-default@1' });
    await expect(search(after, { collection: stale, query: { text: 'a red circle' }, k: 3, rerank: { enabled: false } })).rejects.toThrow(/upgrade-default@1: the files at .* changed since it was registered.*mira models activate/);

    // Remembered, not hashed again for each image ingest leaves it out of.
    const first = await after.runtime('upgrade-default@1').catch((e: unknown) => e);
    expect(first).toBeInstanceOf(BundleUnavailable);
    expect(await after.runtime('upgrade-default@1').catch((e: unknown) => e)).toBe(first);

    // `mira models activate upgrade-default@2`: re-extracts the collection from its originals.
    const { model, reextractions } = await activateModel(after, 'upgrade-default@2');
    expect(model.active).toBe(true);
    expect(reextractions).toHaveLength(1);
    const job = await finishedJob(after, reextractions[0]!.job.id);
    expect(job, JSON.stringify(job)).toMatchObject({ state: 'completed', result: { switched: true, to: 'upgrade-default@2' } });
    const upgraded = (await getCollection(after.db, { id: photos.id }))!;
    expect(upgraded).toMatchObject({ embedder: 'upgrade-default@2', reranker: 'upgrade-default@2', captioner: 'upgrade-default@2', previousEmbedder: 'upgrade-default@1' });

    const found = await search(after, { collection: upgraded, query: { text: scenes[0]!.captions[0]! }, k: 4, rerank: { enabled: true, candidates: 4 } });
    expect(found.model).toBe('upgrade-default@2');
    expect(found.hits).toHaveLength(4);
    expect(found.reranked).toBe(true);
    // A new image after the upgrade is embedded and captioned by version 2.
    const r = await ingest(after, 4);
    const ready = await eventually('the new image ready', async () => {
      const img = await getImage(after.db, r.imageId);
      return img?.status === 'ready' ? img : undefined;
    }, 60_000);
    expect(ready.captionModel).toBe('upgrade-default@2');
    expect(ready.caption).toBeTruthy();
  }, 240_000);
});
