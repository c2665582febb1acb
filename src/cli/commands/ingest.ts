import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { expandPath } from '../../ingest/expand.ts';
import { ingestLimits } from '../../ingest/limits.ts';
import { apiFlags, apiHelp, forEachBounded, openBackend, Refused, type Backend } from '../backend.ts';
import { EXIT_INTERRUPTED, interruptSignal, intFlag, parse, UsageError, type Command } from '../command.ts';
import { progressBar } from '../progress.ts';

export const ingest: Command = {
  summary: 'ingest a file, a folder or a JSONL manifest into a collection',
  help: `usage: mira ingest PATH|MANIFEST.jsonl --collection NAME [--concurrency 8] [--wait 600] [--api URL] [--json]

Reads the images (a folder recursively), refuses bad ones with a reason, stores the rest and waits
up to --wait seconds (0: not at all) for their features to be extracted. The collection is created
with the default model if it does not exist. ${apiHelp}

examples:
  mira ingest ./photos --collection holidays
  mira ingest ./batch.jsonl --collection holidays --json
  MIRA_API_KEY=mira_... mira ingest ./photos --collection holidays --api http://127.0.0.1:8080`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      collection: { type: 'string' },
      concurrency: { type: 'string' },
      wait: { type: 'string' },
      json: { type: 'boolean', default: false },
      ...apiFlags,
    });
    const path = positionals[0];
    if (!path) throw new UsageError('missing PATH');
    if (!values.collection) throw new UsageError('missing --collection NAME');
    const st = await stat(path).catch(() => undefined);
    if (!st) throw new UsageError(`${path}: no such file or folder`);
    const concurrency = intFlag(values.concurrency, 'concurrency', 8);
    const waitS = values.wait === '0' ? 0 : intFlag(values.wait, 'wait', 600);
    const backend = await openBackend(values);
    const stop = interruptSignal(() => console.error('mira ingest: stopping (images stored so far are kept; run it again to go on)'));
    try {
      const summary = await ingestPath(backend, values.collection, resolve(path), st.isDirectory(), { concurrency, waitMs: waitS * 1000, progress: !values.json, signal: stop.signal });
      printSummary(summary, values.json);
      return ingestExitCode(summary, stop.signal);
    } finally {
      await backend.close();
      stop.release();
    }
  },
};

export interface IngestSummary {
  collection: string;
  added: number;
  duplicates: number;
  refused: { source: string; code: string; message: string }[];
  /** How this run's images ended: extracted, failed, or still pending when the wait ran out. */
  ready: number;
  failed: number;
  pending: number;
}

/** Ingests every image under `path` with bounded concurrency, then waits for extraction. */
export async function ingestPath(
  backend: Backend,
  name: string,
  path: string,
  isDir: boolean,
  opts: { concurrency: number; waitMs: number; progress: boolean; signal?: AbortSignal },
): Promise<IngestSummary> {
  const collection = (await backend.collection(name, { create: true }))!;
  const root = isDir ? path : dirname(path);
  const sources = await expandPath(path, { root, maxManifestLines: ingestLimits().maxManifestLines });
  const summary: IngestSummary = { collection: collection.name, added: 0, duplicates: 0, refused: [], ready: 0, failed: 0, pending: 0 };
  const ids = new Set<string>();
  const bar = progressBar('storing', sources.length, { enabled: opts.progress && sources.length > 0 });
  let done = 0;
  await forEachBounded(sources, opts.concurrency, async (s) => {
    // Interrupted: the images stored so far stay (and their jobs run next time); take no more.
    if (opts.signal?.aborted) return;
    try {
      const r = await backend.ingest(collection, s.source, root);
      ids.add(r.imageId);
      if (r.created) summary.added++;
      else summary.duplicates++;
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      const where = s.source.kind === 'path' ? s.source.path : s.source.url;
      summary.refused.push({ source: s.line ? `${where} (line ${s.line})` : where, code: err.code, message: err.message });
    }
    bar.update(++done);
  });
  bar.done();
  const timeoutMs = opts.signal?.aborted ? 0 : opts.waitMs;
  const extracting = progressBar('extracting', ids.size, { enabled: opts.progress && timeoutMs > 0 && ids.size > 0 });
  Object.assign(summary, await backend.settle(collection, [...ids], { timeoutMs, signal: opts.signal, onProgress: (ended) => extracting.update(ended) }));
  extracting.done();
  return summary;
}

/** 130 when interrupted, 1 when an image was refused or failed, else 0. */
export function ingestExitCode(s: IngestSummary, signal: AbortSignal): number {
  if (signal.aborted) return EXIT_INTERRUPTED;
  return s.refused.length > 0 || s.failed > 0 ? 1 : 0;
}

export function printSummary(s: IngestSummary, json: boolean): void {
  if (json) return console.log(JSON.stringify(s));
  const pending = s.pending > 0 ? `, still pending ${s.pending}` : '';
  console.log(`added ${s.added}, duplicates ${s.duplicates}, refused ${s.refused.length}, extracted ${s.ready}, failed ${s.failed}${pending}`);
  for (const r of s.refused.slice(0, 20)) console.log(`  refused ${r.source}: ${r.code}: ${r.message}`);
  if (s.refused.length > 20) console.log(`  … ${s.refused.length - 20} more (use --json for all)`);
}
