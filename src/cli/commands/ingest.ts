import { dirname, resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { createContext, type AppContext } from '../../context.ts';
import { countImagesByStatus } from '../../db/queries/images.ts';
import { classifyError } from '../../ingest/errors.ts';
import { expandPath } from '../../ingest/expand.ts';
import { ingestImage } from '../../ingest/pipeline.ts';
import { InProcessJobQueue } from '../../jobs/in-process.ts';
import { ensureCollection } from '../collection.ts';
import { intFlag, parse, UsageError, type Command } from '../command.ts';
import { progressBar } from '../progress.ts';

export const ingest: Command = {
  summary: 'ingest a file, a folder or a JSONL manifest into a collection',
  help: `usage: mira ingest PATH|MANIFEST.jsonl --collection NAME [--concurrency 8] [--json]

Reads the images (a folder recursively), refuses bad ones with a reason, stores the rest and
extracts their features. The collection is created with the default model if it does not exist.
Without DATABASE_URL it works on the embedded store in MIRA_DATA_DIR.

examples:
  mira ingest ./photos --collection holidays
  mira ingest ./batch.jsonl --collection holidays --json`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      collection: { type: 'string' },
      concurrency: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    const path = positionals[0];
    if (!path) throw new UsageError('missing PATH');
    if (!values.collection) throw new UsageError('missing --collection NAME');
    const st = await stat(path).catch(() => undefined);
    if (!st) throw new UsageError(`${path}: no such file or folder`);
    const concurrency = intFlag(values.concurrency, 'concurrency', 8);
    const ctx = await createContext({ role: 'cli' });
    try {
      const summary = await ingestPath(ctx, values.collection, resolve(path), st.isDirectory(), concurrency, !values.json);
      if (values.json) console.log(JSON.stringify(summary));
      else {
        console.log(`added ${summary.added}, duplicates ${summary.duplicates}, refused ${summary.refused.length}, extracted ${summary.ready}, failed ${summary.failed}`);
        for (const r of summary.refused.slice(0, 20)) console.log(`  refused ${r.source}: ${r.code}: ${r.message}`);
        if (summary.refused.length > 20) console.log(`  … ${summary.refused.length - 20} more (use --json for all)`);
      }
      return summary.refused.length > 0 || summary.failed > 0 ? 1 : 0;
    } finally {
      await ctx.close();
    }
  },
};

export interface IngestSummary {
  collection: string;
  added: number;
  duplicates: number;
  refused: { source: string; code: string; message: string }[];
  ready: number;
  failed: number;
}

/** Ingests every image under `path` with bounded concurrency, then waits for extraction. */
export async function ingestPath(ctx: AppContext, name: string, path: string, isDir: boolean, concurrency: number, showProgress: boolean): Promise<IngestSummary> {
  const collection = await ensureCollection(ctx, name);
  // The CLI reads what its user can read: the root is the folder given (or the file's folder).
  const limits = { ...ctx.limits, root: isDir ? path : dirname(path) };
  const sources = await expandPath(path, limits);
  const summary: IngestSummary = { collection: collection.name, added: 0, duplicates: 0, refused: [], ready: 0, failed: 0 };
  const bar = showProgress ? progressBar('ingesting', sources.length) : undefined;
  let next = 0;
  let done = 0;
  const workers = Array.from({ length: concurrency }, async () => {
    while (next < sources.length) {
      const s = sources[next++]!;
      try {
        const r = await ingestImage({ ...ctx, limits }, collection, s.source);
        if (r.created) summary.added++;
        else summary.duplicates++;
      } catch (err) {
        const c = classifyError(err);
        if (c.code === 'internal') throw err;
        const where = 'path' in s.source ? s.source.path : 'url' in s.source ? s.source.url : '?';
        summary.refused.push({ source: s.line ? `${where} (line ${s.line})` : where, code: c.code, message: c.message });
      }
      bar?.update(++done);
    }
  });
  await Promise.all(workers);
  bar?.done();
  if (ctx.queue instanceof InProcessJobQueue) await ctx.queue.idle();
  const counts = await countImagesByStatus(ctx.db, collection.id);
  summary.ready = counts.ready ?? 0;
  summary.failed = counts.failed ?? 0;
  return summary;
}
