import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InferenceError } from './errors.ts';
import { manifestSchema, type GraphName, type Manifest } from './manifest.ts';
import { checkIO, type ExpectedIO } from './graph-check.ts';
import type { GraphInfo } from './wire.ts';

/** Reads and validates manifest.json; every failure is one line naming the file. */
export async function readManifest(dir: string): Promise<Manifest> {
  const file = join(dir, 'manifest.json');
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch {
    throw new InferenceError('bundle_invalid', `${file}: missing (a bundle folder needs a manifest.json)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new InferenceError('bundle_invalid', `${file}: not valid JSON (${(err as Error).message})`);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InferenceError('bundle_invalid', `${file}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  for (const [name, graph] of Object.entries(parsed.data.graphs)) {
    if (!graph) continue;
    const path = join(dir, graph.file);
    const ok = await stat(path).then((s) => s.isFile() && s.size > 0, () => false);
    if (!ok) throw new InferenceError('bundle_invalid', `${path}: missing (manifest graphs.${name}.file)`);
  }
  return parsed.data;
}

/** What the manifest says a graph must look like, in the shared checker's terms. */
export function expectedIO(manifest: Manifest, name: GraphName): ExpectedIO {
  const g = manifest.graphs[name];
  if (!g) return { inputs: [], outputs: [] };
  const ins = g.inputs as Record<string, string | undefined>;
  const outs = g.outputs as Record<string, string | undefined>;
  const { size } = manifest.preprocess;
  const E = manifest.embedDim;
  const it = manifest.imageTokens;
  const dims: Record<string, (number | null)[]> = {};
  const types: Record<string, string[]> = {};
  if (ins.pixelValues) dims[ins.pixelValues] = [null, 3, size, size];
  if (outs.imageFeat) dims[outs.imageFeat] = [null, E];
  if (outs.textFeat) dims[outs.textFeat] = [null, E];
  if (name === 'vision' && outs.imageEmbeds && it) dims[outs.imageEmbeds] = [null, it.count, it.dim];
  if (name === 'itm' && outs.logits) dims[outs.logits] = [null, 2];
  for (const key of ['inputIds', 'attentionMask'] as const) if (ins[key]) types[ins[key]] = ['int64', 'int32'];
  const required = Object.entries(ins).filter(([k, v]) => v && k !== 'attentionMask').map(([, v]) => v!);
  return {
    inputs: required,
    optionalInputs: ins.attentionMask ? [ins.attentionMask] : [],
    outputs: Object.values(outs).filter((v): v is string => !!v),
    dims,
    types,
  };
}

/** Checks a loaded graph's names, element types and fixed dimensions against the manifest. */
export function checkGraph(manifest: Manifest, name: GraphName, info: GraphInfo, file: string): void {
  checkIO(info, expectedIO(manifest, name), file);
}
