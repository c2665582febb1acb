import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { ExtractRequest } from '../../extract/start.ts';
import { parseManifestLine } from '../../ingest/manifest.ts';
import { apiFlags } from '../backend.ts';
import { EXIT_INTERRUPTED, intFlag, interruptSignal, parse, UsageError, type Command } from '../command.ts';
import { followJob, jobExitCode, openJobsBackend } from './jobs.ts';

export const extract: Command = {
  summary: 'extract features in bulk into embeddings.npy + items.jsonl (a collection, or files)',
  help: `usage: mira extract [--collection NAME] [--manifest FILE|DIR] [--model ID] [--captions] [--chunk N (256)]
                    [--out DIR] [--wait] [--api URL] [--json]

Queues a bulk extraction job. It writes embeddings.npy (float32 rows, NumPy .npy: numpy.load opens
it), items.jsonl (row i of the array is the line with "row": i: imageId, sha256, file or url,
caption, metadata), failed.jsonl (items that could not be read) and manifest.json (model, dim,
counts, row order).

  --collection NAME   its ready images, with the vectors search uses (in creation order); with
                      --manifest, the files are embedded with the collection's model instead
  --manifest FILE|DIR a .jsonl manifest ({"path"} or {"url"} per line, with optional "metadata")
                      or a folder of images; read under the ingestion rules (URLs: public hosts)
  --model ID          without --collection: the model (default: the active one)
  --captions          caption files with the model's captioner (with caption token ids)
  --out DIR           when the job completes, copy (or download) the files into DIR
  --wait              follow the job with a progress bar (done/total, rate, ETA) on stderr

Embedded (no server, no Redis): the job runs in this process, so the command always waits; Ctrl-C
stops it and the next \`mira\` start resumes it at the first unfinished chunk. The manifest's
folder (or the folder given) is the root its paths must stay under.
With --api URL (or MIRA_API_URL) a server runs it: a manifest is read here and sent as entries;
its paths are then paths on the server, under the server's MIRA_INGEST_ROOT.

--json: the job as one JSON line at the end (with --wait, one line per progress change before).
Exit codes: 0 queued (without --wait) or completed, 1 the job failed, was cancelled or lost, or a
server error, 2 bad usage or a bad manifest line (named), 130 interrupted (the job resumes later).

examples:
  mira extract --collection holidays --out ./holidays-features
  mira extract --manifest ./photos.jsonl --captions --out ./out
  mira extract --collection holidays --api http://localhost:8080 --wait --json`,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        collection: { type: 'string' },
        manifest: { type: 'string' },
        model: { type: 'string' },
        captions: { type: 'boolean' },
        chunk: { type: 'string' },
        out: { type: 'string' },
        wait: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        ...apiFlags,
      },
      false,
    );
    if (!values.collection && !values.manifest) throw new UsageError('give --collection NAME, --manifest FILE|DIR, or both');
    if (values.collection && values.model) throw new UsageError("--model: a collection's files are embedded with its own model");
    const remote = (values.api ?? (process.env.MIRA_API_URL || undefined)) !== undefined;
    const manifest = values.manifest ? resolve(values.manifest) : undefined;
    const files = manifest ? await manifestSource(manifest, remote) : undefined;
    // Embedded: this user's files, under the folder they named (MIRA_INGEST_ROOT when it is set).
    const root = manifest && !remote && !process.env.MIRA_INGEST_ROOT ? ((await stat(manifest)).isDirectory() ? manifest : dirname(manifest)) : undefined;
    const backend = await openJobsBackend(values.api, root ? { MIRA_INGEST_ROOT: root } : {});
    try {
      let job = await backend.extract({
        ...(values.collection ? { collection: values.collection } : {}),
        ...(files ? { files } : {}),
        ...(values.model ? { model: values.model } : {}),
        ...(values.captions === undefined ? {} : { captions: values.captions }),
        ...(values.chunk === undefined ? {} : { chunkSize: intFlag(values.chunk, 'chunk', 256) }),
      });
      if (!values.json) console.error(`extraction queued: job ${job.id}`);
      if (values.wait || values.out || backend.runsJobsHere) {
        const stop = interruptSignal();
        try {
          job = await followJob(backend, job, { json: values.json, signal: stop.signal, label: 'extracting' });
        } finally {
          stop.release();
        }
        if (stop.signal.aborted) {
          console.error(`stopped: job ${job.id} resumes ${backend.runsJobsHere ? 'at the next mira start' : 'on the server'}`);
          return EXIT_INTERRUPTED;
        }
      }
      if (values.json) console.log(JSON.stringify(job));
      if (job.state === 'completed') {
        const r = job.result as { rows: number; dim: number; failed: number; model: string };
        const saved = values.out ? await backend.saveFiles(job.id, resolve(values.out)) : undefined;
        if (!values.json) {
          console.log(`${r.rows} rows × ${r.dim} (${r.model})${r.failed ? `, ${r.failed} items failed (failed.jsonl)` : ''}`);
          console.log(saved ? `files: ${saved.join(' ')}` : `files: ${await backend.filesAt(job.id)}`);
        }
        return 0;
      }
      if (!values.json && job.state !== 'queued') console.log(`job ${job.id} ${job.state}${job.error ? `: ${job.error}` : ''}`);
      return job.state === 'queued' || job.state === 'running' ? 0 : jobExitCode(job);
    } finally {
      await backend.close();
    }
  },
};

/**
 * Embedded: the path itself (the job reads it under the root). With a server: a .jsonl manifest
 * read here, checked line by line (a bad line is named), and sent as entries.
 */
async function manifestSource(path: string, remote: boolean): Promise<NonNullable<ExtractRequest['files']>> {
  const st = await stat(path).catch(() => {
    throw new UsageError(`--manifest: ${path} does not exist`);
  });
  if (!remote) return { kind: 'path', path };
  if (st.isDirectory()) throw new UsageError(`--manifest: ${path} is a folder; with --api give a .jsonl manifest of server paths or URLs`);
  const entries = [];
  for (const [i, text] of (await readFile(path, 'utf8')).replace(/^\uFEFF/, '').split('\n').entries()) {
    let entry;
    try {
      entry = parseManifestLine(text.replace(/\r$/, ''), i + 1, '.');
    } catch (err) {
      throw new UsageError(`${path}: ${(err as Error).message}`);
    }
    if (!entry) continue;
    const { source } = entry;
    entries.push(source.kind === 'url' ? { url: source.url, ...(source.metadata ? { metadata: source.metadata } : {}) } : { path: source.path.replace(/^\.\//, ''), ...(source.metadata ? { metadata: source.metadata } : {}) });
  }
  if (entries.length === 0) throw new UsageError(`${path}: no entries`);
  return { kind: 'entries', entries };
}
