import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InferenceError } from './errors.ts';
import { manifestSchema, type GraphName, type Manifest } from './manifest.ts';
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

/** Names a graph must have, from the manifest. */
export function expectedIO(manifest: Manifest, name: GraphName): { inputs: string[]; outputs: string[] } {
  const g = manifest.graphs[name];
  if (!g) return { inputs: [], outputs: [] };
  return {
    inputs: Object.values(g.inputs).filter((v): v is string => typeof v === 'string'),
    outputs: Object.values(g.outputs).filter((v): v is string => typeof v === 'string'),
  };
}

/** Checks a loaded graph's names and fixed dimensions against the manifest. */
export function checkGraph(manifest: Manifest, name: GraphName, info: GraphInfo, file: string): void {
  const want = expectedIO(manifest, name);
  const haveIn = info.inputs.map((i) => i.name);
  const haveOut = info.outputs.map((o) => o.name);
  for (const n of want.inputs) {
    if (!haveIn.includes(n)) throw new InferenceError('bundle_invalid', `${file}: expected input "${n}", the graph has inputs [${haveIn.join(', ')}]`);
  }
  for (const n of want.outputs) {
    if (!haveOut.includes(n)) throw new InferenceError('bundle_invalid', `${file}: expected output "${n}", the graph has outputs [${haveOut.join(', ')}]`);
  }
  const dimOf = (outName: string | undefined, axis: number) => {
    const shape = info.outputs.find((o) => o.name === outName)?.shape;
    const d = shape?.[axis];
    return d !== undefined && /^\d+$/.test(d) ? Number(d) : undefined;
  };
  const mismatch = (what: string, got: number | undefined, expected: number) => {
    if (got !== undefined && got !== expected) {
      throw new InferenceError('bundle_invalid', `${file}: ${what} is ${got} but the manifest says ${expected}`);
    }
  };
  const g = manifest.graphs;
  if (name === 'vision') {
    mismatch('the image feature dimension', dimOf(g.vision.outputs.imageFeat, 1), manifest.embedDim);
    if (manifest.imageTokens && g.vision.outputs.imageEmbeds) {
      mismatch('the image token count', dimOf(g.vision.outputs.imageEmbeds, 1), manifest.imageTokens.count);
      mismatch('the image token width', dimOf(g.vision.outputs.imageEmbeds, 2), manifest.imageTokens.dim);
    }
    const px = info.inputs.find((i) => i.name === g.vision.inputs.pixelValues)?.shape;
    const side = px?.[2];
    if (side && /^\d+$/.test(side)) mismatch('the input image size', Number(side), manifest.preprocess.size);
  }
  if (name === 'text') mismatch('the text feature dimension', dimOf(g.text.outputs.textFeat, 1), manifest.embedDim);
  if (name === 'itm' && g.itm) mismatch('the ITM logit count', dimOf(g.itm.outputs.logits, 1), 2);
}
