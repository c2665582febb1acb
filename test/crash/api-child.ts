/**
 * Child of api-restart.test.ts: an API-role process that ingests scenes and deletes every third
 * one, forever, printing what it did. The test kills it with SIGKILL between writes.
 */
import { loadEnv } from '../../src/config.ts';
import { createContext } from '../../src/context.ts';
import { ensureCollection } from '../../src/cli/collection.ts';
import { deleteImage } from '../../src/db/queries/images.ts';
import { ingestImage } from '../../src/ingest/pipeline.ts';
import { InProcessJobQueue } from '../../src/jobs/in-process.ts';
import { createLogger } from '../../src/log.ts';
import { renderScene, sampleScenes } from '../../src/scenes/index.ts';

const ctx = await createContext({ role: 'api', env: loadEnv(), log: createLogger('api-child', 'warn') });
const collection = await ensureCollection(ctx, process.env.CHILD_COLLECTION!);
const records = sampleScenes(Number(process.env.CHILD_SEED ?? 5), 10_000);
for (let i = 0; ; i++) {
  const r = records[i]!;
  const bytes = await renderScene(r.scene, { size: 32, layout: r.layout });
  const { imageId } = await ingestImage(ctx, collection, { kind: 'upload', bytes, filename: r.file });
  if (ctx.queue instanceof InProcessJobQueue) await ctx.queue.idle();
  if (i % 3 === 2) await deleteImage(ctx.db, imageId);
  process.stdout.write(`${i + 1}\n`);
}
