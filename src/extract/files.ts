import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/**
 * Where an extraction job writes: `<MIRA_DATA_DIR>/exports/<jobId>/`. The API serves the files from
 * its own data folder, so API and workers must share it (one machine, or one shared volume such as
 * the compose file's `mira-data`); on several machines without a shared volume the files stay on
 * the worker that wrote them.
 */
export function exportDir(dataDir: string, jobId: string): string {
  if (!/^[A-Za-z0-9._:-]+$/.test(jobId) || jobId.startsWith('.')) throw new RangeError(`not a job id: ${jobId}`);
  return resolve(dataDir, 'exports', jobId);
}

/** The finished files and their media types; nothing else in the folder is served. */
export const OUTPUT_FILES = {
  'embeddings.npy': 'application/octet-stream',
  'items.jsonl': 'application/x-ndjson',
  'failed.jsonl': 'application/x-ndjson',
  'manifest.json': 'application/json',
} as const;
export type OutputFile = keyof typeof OUTPUT_FILES;

export const isOutputFile = (name: string): name is OutputFile => Object.hasOwn(OUTPUT_FILES, name);

export interface OutputFileInfo {
  name: OutputFile;
  bytes: number;
  contentType: string;
}

/** The output files present (all of them once manifest.json is there: it is written last). */
export async function listOutputFiles(dir: string): Promise<OutputFileInfo[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const out: OutputFileInfo[] = [];
  for (const name of names.filter(isOutputFile).sort()) {
    out.push({ name, bytes: (await stat(join(dir, name))).size, contentType: OUTPUT_FILES[name] });
  }
  return out;
}
