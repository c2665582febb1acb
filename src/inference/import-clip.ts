/**
 * Imports a published CLIP ONNX export as a Mira bundle: recognizes the layout, reads its
 * preprocessing and tokenizer settings, checks the graphs with onnxruntime and writes a
 * `manifest.json` (family `clip`, see models/README.md).
 *
 * Layouts:
 * - open_clip / Immich (immich-app's Hugging Face repos, made by Immich's model exporter):
 *     config.json                  open_clip model config (embed_dim, text_cfg.context_length), optional
 *     visual/model.onnx            image [1|B, 3, S, S] -> embedding [1|B, E]
 *     visual/preprocess_cfg.json   open_clip PreprocessCfg (size, mean, std, interpolation, resize_mode)
 *     textual/model.onnx           text [1|B, 77] (int32 in Immich's exports) -> embedding [1|B, E]
 *     textual/tokenizer.json       (or ./tokenizer.json), textual/tokenizer_config.json (pad_token)
 * - transformers.js (Xenova/*, optimum exports):
 *     onnx/vision_model.onnx       pixel_values -> image_embeds [B, E]
 *     onnx/text_model.onnx         input_ids[, attention_mask] -> text_embeds [B, E]
 *     tokenizer.json, tokenizer_config.json, preprocessor_config.json (CLIPImageProcessor), config.json
 *
 * CLI: npx tsx src/inference/import-clip.ts <dir> [--out DIR] [--symlink] [--name N] [--version V] [--variant quantized]
 */
import { constants as fsConstants } from 'node:fs';
import { copyFile, mkdir, readFile, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { InferenceError } from './errors.ts';
import { checkIO, describeSession, fixedDim, formatShape, openGraph, probeOutputShapes, type GraphIO, type TensorIO } from './graph-check.ts';
import { manifestSchema, type Manifest, type PreprocessSpec } from './manifest.ts';

export type ClipLayout = 'open_clip' | 'transformers.js';

export interface ImportClipOptions {
  /** Write the bundle here instead of into `dir`; the graphs and side files are copied or linked. */
  out?: string;
  /** How files reach `out`: `copy` (default; a reflink where the filesystem can) or `symlink`. */
  link?: 'copy' | 'symlink';
  /** Registered as `name@version`; name defaults to the folder's name, version to "1". */
  name?: string;
  version?: string;
  /** Force a layout instead of detecting it. */
  layout?: ClipLayout;
  /** transformers.js: a graph variant, e.g. `quantized` reads onnx/vision_model_quantized.onnx. */
  variant?: string;
}

export interface ImportClipResult {
  manifest: Manifest;
  /** Absolute paths written: manifest.json, and with `out` every copied or linked file. */
  written: string[];
  layout: ClipLayout;
  /** Things the runtime must know that the manifest cannot say (also in manifest.about.importer). */
  warnings: string[];
}

const bad = (file: string, msg: string, cause?: unknown): never => {
  throw new InferenceError('bundle_invalid', `${file}: ${msg}`, cause === undefined ? undefined : { cause });
};

const exists = (p: string) => stat(p).then((s) => s.isFile(), () => false);

async function readJson(file: string, what: string): Promise<Record<string, unknown>> {
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch {
    return bad(file, `missing (expected ${what})`);
  }
  try {
    const v = JSON.parse(raw) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad(file, `expected a JSON object (${what})`);
    return v as Record<string, unknown>;
  } catch (e) {
    return bad(file, `not valid JSON (${(e as Error).message})`);
  }
}

async function readJsonIfExists(file: string, what: string): Promise<Record<string, unknown> | undefined> {
  return (await exists(file)) ? readJson(file, what) : undefined;
}

const obj = (v: unknown): Record<string, unknown> | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function triple(v: unknown, file: string, key: string): [number, number, number] {
  if (typeof v === 'number') return [v, v, v];
  if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number')) return v as [number, number, number];
  return bad(file, `${key} must be 3 numbers, got ${JSON.stringify(v)}`);
}

/** A token's content, whether given as a string or as an AddedToken object ({content}). */
const tokenContent = (v: unknown): string | undefined => str(v) ?? str(obj(v)?.content);

// ------------------------------------------------------------------------------------------------
// layout detection
// ------------------------------------------------------------------------------------------------

const OPEN_CLIP = { vision: 'visual/model.onnx', text: 'textual/model.onnx' };
const tjGraph = (kind: 'vision' | 'text', variant?: string) => `onnx/${kind}_model${variant ? `_${variant}` : ''}.onnx`;

export async function detectClipLayout(dir: string, variant?: string): Promise<ClipLayout> {
  const has = (p: string) => exists(join(dir, p));
  if ((await has(OPEN_CLIP.vision)) || (await has(OPEN_CLIP.text))) return 'open_clip';
  if ((await has(tjGraph('vision', variant))) || (await has(tjGraph('text', variant)))) return 'transformers.js';
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return bad(dir, 'not a folder');
  return bad(
    dir,
    `not a CLIP export: expected ${OPEN_CLIP.vision} + ${OPEN_CLIP.text} (open_clip / Immich) or ${tjGraph('vision', variant)} + ${tjGraph('text', variant)} (transformers.js)`,
  );
}

// ------------------------------------------------------------------------------------------------
// preprocessing
// ------------------------------------------------------------------------------------------------

const OPEN_CLIP_KERNELS: Record<string, PreprocessSpec['kernel']> = { bicubic: 'bicubic', bilinear: 'bilinear', nearest: 'nearest', lanczos: 'lanczos3' };

/** open_clip's PreprocessCfg -> the manifest's preprocess spec. */
export function preprocessFromOpenClip(cfg: Record<string, unknown>, file: string): PreprocessSpec {
  const sizeRaw = cfg.size;
  let size: number | undefined;
  if (typeof sizeRaw === 'number') size = sizeRaw;
  else if (Array.isArray(sizeRaw) && sizeRaw.length === 2 && typeof sizeRaw[0] === 'number') {
    if (sizeRaw[0] !== sizeRaw[1]) return bad(file, `size ${JSON.stringify(sizeRaw)} is not square; Mira's preprocess needs a square input`);
    size = sizeRaw[0];
  }
  if (!size || !Number.isInteger(size) || size <= 0) return bad(file, `size must be a positive integer or [n, n], got ${JSON.stringify(sizeRaw)}`);
  const mode = str(cfg.mode) ?? 'RGB';
  if (mode !== 'RGB') return bad(file, `mode "${mode}" is not supported (expected "RGB")`);
  const interp = str(cfg.interpolation) ?? 'bicubic';
  const kernel = OPEN_CLIP_KERNELS[interp];
  if (!kernel) return bad(file, `interpolation "${interp}" is not supported (expected one of ${Object.keys(OPEN_CLIP_KERNELS).join(', ')})`);
  const rm = str(cfg.resize_mode) ?? 'shortest';
  const resize = rm === 'shortest' ? 'shortest-crop' : rm === 'squash' ? 'squash' : undefined;
  if (!resize) return bad(file, `resize_mode "${rm}" is not supported (expected "shortest" or "squash"; "longest" pads, which Mira's preprocess cannot express)`);
  return {
    size,
    resize,
    kernel,
    mean: triple(cfg.mean ?? [0.48145466, 0.4578275, 0.40821073], file, 'mean'),
    std: triple(cfg.std ?? [0.26862954, 0.26130258, 0.27577711], file, 'std'),
    // open_clip's transform starts with image.convert('RGB'): alpha dropped, stored colour kept
    alpha: { mode: 'drop', background: [255, 255, 255] },
  };
}

/** PIL resample ids, as CLIPImageProcessor stores them. */
const PIL_RESAMPLE: Record<number, PreprocessSpec['kernel'] | undefined> = { 0: 'nearest', 1: 'lanczos3', 2: 'bilinear', 3: 'bicubic' };

/** transformers' CLIPImageProcessor config -> the manifest's preprocess spec. */
export function preprocessFromHf(cfg: Record<string, unknown>, file: string): PreprocessSpec {
  const side = (v: unknown, key: string): { shortest?: number; square?: number } => {
    if (typeof v === 'number') return { shortest: v, square: v };
    const o = obj(v);
    if (o) {
      const se = num(o.shortest_edge);
      if (se !== undefined) return { shortest: se };
      const h = num(o.height);
      const w = num(o.width);
      if (h !== undefined && w !== undefined) {
        if (h !== w) return bad(file, `${key} ${JSON.stringify(v)} is not square; Mira's preprocess needs a square input`);
        return { square: h };
      }
    }
    return bad(file, `${key} must be a number, {shortest_edge} or {height, width}, got ${JSON.stringify(v)}`);
  };
  const doResize = cfg.do_resize !== false;
  const doCrop = cfg.do_center_crop !== false && cfg.crop_size !== undefined;
  if (!doResize) return bad(file, 'do_resize is false; Mira needs a fixed input size');
  const size = side(cfg.size, 'size');
  let spec: Pick<PreprocessSpec, 'size' | 'resize'>;
  if (doCrop) {
    const crop = side(cfg.crop_size, 'crop_size');
    const c = crop.square ?? crop.shortest!;
    const s = size.shortest ?? size.square!;
    if (s !== c) {
      return bad(file, `resizing the shortest edge to ${s} then cropping ${c} is not supported (Mira's shortest-crop resizes to the crop size)`);
    }
    spec = { size: c, resize: size.shortest !== undefined ? 'shortest-crop' : 'squash' };
  } else {
    if (size.square === undefined) return bad(file, 'size.shortest_edge without a center crop gives a non-square input');
    spec = { size: size.square, resize: 'squash' };
  }
  const resample = num(cfg.resample) ?? 3;
  const kernel = PIL_RESAMPLE[resample];
  if (!kernel) return bad(file, `resample ${resample} is not supported (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic)`);
  // value = (v * rescale - mean) / std  ==  (v / 255 - mean') / std'
  const rescale = cfg.do_rescale === false ? 1 : (num(cfg.rescale_factor) ?? 1 / 255);
  const k = rescale * 255;
  const normalize = cfg.do_normalize !== false;
  const mean = normalize ? triple(cfg.image_mean ?? [0.48145466, 0.4578275, 0.40821073], file, 'image_mean') : ([0, 0, 0] as [number, number, number]);
  const std = normalize ? triple(cfg.image_std ?? [0.26862954, 0.26130258, 0.27577711], file, 'image_std') : ([1, 1, 1] as [number, number, number]);
  const scale = (t: [number, number, number]) => (Math.abs(k - 1) < 1e-9 ? t : (t.map((x) => x / k) as [number, number, number]));
  return { ...spec, kernel, mean: scale(mean), std: scale(std), alpha: { mode: 'drop', background: [255, 255, 255] } };
}

// ------------------------------------------------------------------------------------------------
// tokenizer
// ------------------------------------------------------------------------------------------------

interface LoadedTokenizer {
  tok: Tokenizer;
  vocabSize: number;
}

async function loadTokenizer(file: string): Promise<LoadedTokenizer> {
  const json = await readJson(file, 'a Hugging Face tokenizer.json');
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, {});
    tok.encode('a photo');
  } catch (e) {
    return bad(file, `not a tokenizer.json that @huggingface/tokenizers can load (${(e as Error).message.split('\n')[0]})`);
  }
  return { tok, vocabSize: tok.get_vocab(true).size };
}

function tokenId(t: LoadedTokenizer, token: string, file: string, role: string): number {
  const id = t.tok.token_to_id(token);
  if (id === undefined) return bad(file, `the ${role} token "${token}" is not in the vocabulary`);
  return id;
}

// ------------------------------------------------------------------------------------------------
// graphs
// ------------------------------------------------------------------------------------------------

interface GraphNames {
  pixelValues: string;
  imageFeat: string;
  inputIds: string;
  attentionMask?: string;
  textFeat: string;
}

const NAMES: Record<ClipLayout, GraphNames & { optionalMask?: string }> = {
  open_clip: { pixelValues: 'image', imageFeat: 'embedding', inputIds: 'text', textFeat: 'embedding' },
  'transformers.js': { pixelValues: 'pixel_values', imageFeat: 'image_embeds', inputIds: 'input_ids', optionalMask: 'attention_mask', textFeat: 'text_embeds' },
};

interface CheckedGraphs {
  embedDim: number;
  visionIO: GraphIO;
  textIO: GraphIO;
  attentionMask?: string;
  /** Fixed text length, when the graph has one. */
  textLength?: number;
  textIdsType?: string;
  fixedBatch: { vision?: number; text?: number };
}

const find = (ts: TensorIO[], name: string) => ts.find((t) => t.name === name);

async function checkGraphs(
  visionFile: string,
  textFile: string,
  names: (typeof NAMES)[ClipLayout],
  want: { embedDim?: number; embedDimFrom: string; size: number; sizeFrom: string; contextLength?: number; contextFrom?: string },
): Promise<CheckedGraphs> {
  const vision = await openGraph(visionFile);
  const text = await openGraph(textFile).catch(async (e: unknown) => {
    await vision.release().catch(() => undefined);
    throw e;
  });
  try {
    const visionIO = describeSession(vision);
    const textIO = describeSession(text);
    checkIO(visionIO, { inputs: [names.pixelValues], outputs: [names.imageFeat], types: { [names.pixelValues]: 'float32', [names.imageFeat]: 'float32' } }, visionFile);
    const hasMask = names.optionalMask !== undefined && textIO.inputs.some((t) => t.name === names.optionalMask);
    const textInputs = [names.inputIds, ...(hasMask ? [names.optionalMask!] : [])];
    checkIO(
      textIO,
      {
        inputs: textInputs,
        outputs: [names.textFeat],
        types: { [names.inputIds]: ['int64', 'int32'], ...(hasMask ? { [names.optionalMask!]: ['int64', 'int32'] } : {}), [names.textFeat]: 'float32' },
        dims: { [names.inputIds]: [null, null], [names.textFeat]: [null, null] },
      },
      textFile,
    );

    // pixel input: [B, 3, S, S] with S the preprocessing size
    const px = find(visionIO.inputs, names.pixelValues)!;
    checkIO(visionIO, { inputs: [], outputs: [], strictInputs: false, dims: { [names.pixelValues]: [null, 3, null, null], [names.imageFeat]: [null, null] } }, visionFile);
    for (const axis of [2, 3]) {
      const s = fixedDim(px, axis);
      if (s !== undefined && s !== want.size) {
        bad(visionFile, `input "${px.name}" has shape ${formatShape(px.shape)}, but ${want.sizeFrom} says the image size is ${want.size}`);
      }
    }

    // feature dims: from metadata, or one dummy run each
    let eImg = fixedDim(find(visionIO.outputs, names.imageFeat), 1);
    let eTxt = fixedDim(find(textIO.outputs, names.textFeat), 1);
    if (eImg === undefined) eImg = (await probeOutputShapes(vision, visionFile))[names.imageFeat]?.[1];
    if (eTxt === undefined) eTxt = (await probeOutputShapes(text, textFile, { sequence_length: want.contextLength ?? 77 }))[names.textFeat]?.[1];
    if (eImg === undefined) return bad(visionFile, `could not learn the dimension of output "${names.imageFeat}"`);
    if (eTxt === undefined) return bad(textFile, `could not learn the dimension of output "${names.textFeat}"`);
    if (want.embedDim !== undefined) {
      if (eImg !== want.embedDim) bad(visionFile, `output "${names.imageFeat}" has dimension ${eImg}, but ${want.embedDimFrom} says ${want.embedDim}`);
      if (eTxt !== want.embedDim) bad(textFile, `output "${names.textFeat}" has dimension ${eTxt}, but ${want.embedDimFrom} says ${want.embedDim}`);
    } else if (eImg !== eTxt) {
      bad(textFile, `output "${names.textFeat}" has dimension ${eTxt}, but the vision graph's "${names.imageFeat}" has ${eImg}`);
    }

    const ids = find(textIO.inputs, names.inputIds)!;
    const textLength = fixedDim(ids, 1);
    if (textLength !== undefined && want.contextLength !== undefined && textLength !== want.contextLength) {
      bad(textFile, `input "${ids.name}" has a fixed length of ${textLength}, but ${want.contextFrom} says ${want.contextLength}`);
    }
    return {
      embedDim: eImg,
      visionIO,
      textIO,
      ...(hasMask ? { attentionMask: names.optionalMask! } : {}),
      ...(textLength !== undefined ? { textLength } : {}),
      ...(ids.type ? { textIdsType: ids.type } : {}),
      fixedBatch: { vision: fixedDim(px, 0), text: fixedDim(ids, 0) },
    };
  } finally {
    await vision.release().catch(() => undefined);
    await text.release().catch(() => undefined);
  }
}

// ------------------------------------------------------------------------------------------------
// the two layouts
// ------------------------------------------------------------------------------------------------

interface Draft {
  manifest: Omit<Manifest, 'classify'> & { classify: { template: string } };
  /** Files the manifest names or that document it, relative to the source folder. */
  files: string[];
  warnings: string[];
}

async function draftOpenClip(dir: string, opts: ImportClipOptions): Promise<Draft> {
  const files: string[] = [];
  const visionRel = OPEN_CLIP.vision;
  const textRel = OPEN_CLIP.text;
  for (const rel of [visionRel, textRel]) {
    if (!(await exists(join(dir, rel)))) bad(join(dir, rel), 'missing (the open_clip / Immich layout needs visual/model.onnx and textual/model.onnx)');
  }
  // preprocessing: visual/preprocess_cfg.json (Immich), ./preprocess_cfg.json, or open_clip_config.json's preprocess_cfg
  let preprocess: PreprocessSpec | undefined;
  let preprocessFrom = '';
  for (const rel of ['visual/preprocess_cfg.json', 'preprocess_cfg.json']) {
    const cfg = await readJsonIfExists(join(dir, rel), 'an open_clip preprocess config');
    if (cfg) {
      preprocess = preprocessFromOpenClip(cfg, join(dir, rel));
      preprocessFrom = rel;
      files.push(rel);
      break;
    }
  }
  const ocConfigFile = join(dir, 'open_clip_config.json');
  const ocConfig = await readJsonIfExists(ocConfigFile, 'an open_clip config');
  if (!preprocess && ocConfig && obj(ocConfig.preprocess_cfg)) {
    preprocess = preprocessFromOpenClip(obj(ocConfig.preprocess_cfg)!, ocConfigFile);
    preprocessFrom = 'open_clip_config.json';
    files.push('open_clip_config.json');
  }
  if (!preprocess) return bad(join(dir, 'visual/preprocess_cfg.json'), 'missing (expected the open_clip preprocess config: size, mean, std, interpolation, resize_mode)');

  // model config: ./config.json (Immich) or open_clip_config.json's model_cfg
  const configFile = join(dir, 'config.json');
  const config = (await readJsonIfExists(configFile, 'the open_clip model config')) ?? obj(ocConfig?.model_cfg);
  if (config && (await exists(configFile))) files.push('config.json');
  const configName = (await exists(configFile)) ? 'config.json' : 'open_clip_config.json';
  const embedDim = num(config?.embed_dim);
  const contextLength = num(obj(config?.text_cfg)?.context_length);
  const imageSize = num(obj(config?.vision_cfg)?.image_size);
  if (imageSize !== undefined && imageSize !== preprocess.size) {
    bad(join(dir, preprocessFrom), `size ${preprocess.size} disagrees with ${configName} vision_cfg.image_size ${imageSize}`);
  }

  // tokenizer: textual/tokenizer.json or ./tokenizer.json
  let tokRel = 'textual/tokenizer.json';
  if (!(await exists(join(dir, tokRel)))) tokRel = 'tokenizer.json';
  if (!(await exists(join(dir, tokRel)))) return bad(join(dir, 'textual/tokenizer.json'), 'missing (expected the CLIP tokenizer.json here or at the top of the folder)');
  files.push(tokRel);
  const tokFile = join(dir, tokRel);
  const tok = await loadTokenizer(tokFile);
  const tokCfgRel = join(dirname(tokRel), 'tokenizer_config.json');
  const tokCfg = await readJsonIfExists(join(dir, tokCfgRel), 'a tokenizer config');
  if (tokCfg) files.push(tokCfgRel);
  for (const extra of [join(dirname(tokRel), 'special_tokens_map.json')]) if (await exists(join(dir, extra))) files.push(extra);

  const eosToken = tokenContent(tokCfg?.eos_token) ?? '<|endoftext|>';
  const eos = tokenId(tok, eosToken, tokFile, 'end-of-text');
  // Immich pads with tokenizer_config's pad_token; open_clip's own tokenize() pads with 0. Both give
  // the same features for CLIP's causal text tower pooled at the (first) EOT.
  const padToken = tokenContent(tokCfg?.pad_token);
  const pad = padToken !== undefined ? tokenId(tok, padToken, join(dir, tokCfgRel), 'pad') : 0;

  const g = await checkGraphs(join(dir, visionRel), join(dir, textRel), NAMES.open_clip, {
    ...(embedDim !== undefined ? { embedDim } : {}),
    embedDimFrom: `${configName} embed_dim`,
    size: preprocess.size,
    sizeFrom: preprocessFrom,
    ...(contextLength !== undefined ? { contextLength, contextFrom: `${configName} text_cfg.context_length` } : {}),
  });
  const maxLength = g.textLength ?? contextLength ?? 77;
  const warnings = graphWarnings(g, visionRel, textRel);
  return {
    manifest: {
      schemaVersion: 1,
      family: 'clip',
      name: opts.name ?? basename(resolve(dir)),
      version: opts.version ?? '1',
      embedDim: g.embedDim,
      preprocess,
      tokenizer: { file: tokRel, maxLength, padding: g.textLength !== undefined ? 'max' : 'longest', specialTokens: { pad, eos } },
      classify: { template: 'a photo of a {}.' },
      graphs: {
        vision: { file: visionRel, inputs: { pixelValues: 'image' }, outputs: { imageFeat: 'embedding' } },
        text: { file: textRel, inputs: { inputIds: 'text' }, outputs: { textFeat: 'embedding' } },
      },
      about: about('open_clip', dir, g, warnings, { pad: padToken !== undefined ? `${tokCfgRel} pad_token` : "0 (open_clip's tokenize)" }),
    },
    files: [visionRel, textRel, ...files],
    warnings,
  };
}

async function draftTransformersJs(dir: string, opts: ImportClipOptions): Promise<Draft> {
  const visionRel = tjGraph('vision', opts.variant);
  const textRel = tjGraph('text', opts.variant);
  for (const rel of [visionRel, textRel]) {
    if (!(await exists(join(dir, rel)))) bad(join(dir, rel), `missing (the transformers.js layout needs ${visionRel} and ${textRel})`);
  }
  const files: string[] = [];
  const ppFile = join(dir, 'preprocessor_config.json');
  const preprocess = preprocessFromHf(await readJson(ppFile, 'the CLIPImageProcessor config'), ppFile);
  files.push('preprocessor_config.json');

  const configFile = join(dir, 'config.json');
  const config = await readJsonIfExists(configFile, 'the CLIP model config');
  if (config) files.push('config.json');
  const embedDim = num(config?.projection_dim);
  const textCfg = obj(config?.text_config);
  const visionCfg = obj(config?.vision_config);
  const imageSize = num(visionCfg?.image_size);
  if (imageSize !== undefined && imageSize !== preprocess.size) {
    bad(ppFile, `the crop size ${preprocess.size} disagrees with config.json vision_config.image_size ${imageSize}`);
  }

  const tokRel = 'tokenizer.json';
  const tokFile = join(dir, tokRel);
  if (!(await exists(tokFile))) return bad(tokFile, 'missing (expected the CLIP tokenizer.json)');
  files.push(tokRel);
  const tok = await loadTokenizer(tokFile);
  const tokCfgFile = join(dir, 'tokenizer_config.json');
  const tokCfg = await readJsonIfExists(tokCfgFile, 'a tokenizer config');
  if (tokCfg) files.push('tokenizer_config.json');
  if (await exists(join(dir, 'special_tokens_map.json'))) files.push('special_tokens_map.json');

  const eosToken = tokenContent(tokCfg?.eos_token) ?? '<|endoftext|>';
  const eos = tokenId(tok, eosToken, tokFile, 'end-of-text');
  const padToken = tokenContent(tokCfg?.pad_token);
  const tokJson = obj(JSON.parse(await readFile(tokFile, 'utf8')));
  const padFromTokJson = num(obj(tokJson?.padding)?.pad_id);
  const pad = padToken !== undefined ? tokenId(tok, padToken, tokCfgFile, 'pad') : (padFromTokJson ?? eos);

  const modelMax = num(tokCfg?.model_max_length);
  const contextLength = num(textCfg?.max_position_embeddings) ?? (modelMax !== undefined && modelMax < 100_000 ? modelMax : undefined);
  const g = await checkGraphs(join(dir, visionRel), join(dir, textRel), NAMES['transformers.js'], {
    ...(embedDim !== undefined ? { embedDim } : {}),
    embedDimFrom: 'config.json projection_dim',
    size: preprocess.size,
    sizeFrom: 'preprocessor_config.json',
  });
  if (g.textLength !== undefined && contextLength !== undefined && g.textLength > contextLength) {
    bad(join(dir, textRel), `input "input_ids" has a fixed length of ${g.textLength}, more than the ${contextLength} positions config.json gives`);
  }
  const maxLength = g.textLength ?? contextLength ?? 77;
  const warnings = graphWarnings(g, visionRel, textRel);
  return {
    manifest: {
      schemaVersion: 1,
      family: 'clip',
      name: opts.name ?? basename(resolve(dir)),
      version: opts.version ?? '1',
      embedDim: g.embedDim,
      preprocess,
      tokenizer: { file: tokRel, maxLength, padding: g.textLength !== undefined ? 'max' : 'longest', specialTokens: { pad, eos } },
      classify: { template: 'a photo of a {}.' },
      graphs: {
        vision: { file: visionRel, inputs: { pixelValues: 'pixel_values' }, outputs: { imageFeat: 'image_embeds' } },
        text: {
          file: textRel,
          inputs: { inputIds: 'input_ids', ...(g.attentionMask ? { attentionMask: g.attentionMask } : {}) },
          outputs: { textFeat: 'text_embeds' },
        },
      },
      about: about('transformers.js', dir, g, warnings, {
        pad: padToken !== undefined ? 'tokenizer_config.json pad_token' : padFromTokJson !== undefined ? 'tokenizer.json padding.pad_id' : 'eos',
      }),
    },
    files: [visionRel, textRel, ...files],
    warnings,
  };
}

function graphWarnings(g: CheckedGraphs, visionRel: string, textRel: string): string[] {
  const w: string[] = [];
  if (g.fixedBatch.vision !== undefined) w.push(`${visionRel} has a fixed batch of ${g.fixedBatch.vision}: run it ${g.fixedBatch.vision} image(s) at a time`);
  if (g.fixedBatch.text !== undefined) w.push(`${textRel} has a fixed batch of ${g.fixedBatch.text}: run it ${g.fixedBatch.text} text(s) at a time`);
  if (g.textIdsType && g.textIdsType !== 'int64') w.push(`${textRel} takes ${g.textIdsType} token ids, not int64`);
  return w;
}

function about(layout: ClipLayout, dir: string, g: CheckedGraphs, warnings: string[], sources: Record<string, string>): Record<string, unknown> {
  const shapes = (io: GraphIO) =>
    Object.fromEntries([...io.inputs, ...io.outputs].map((t) => [t.name, { type: t.type, shape: t.shape ? formatShape(t.shape) : undefined }]));
  return {
    source: { layout, dir: resolve(dir) },
    importer: {
      tool: 'src/inference/import-clip.ts',
      ...(g.fixedBatch.vision !== undefined || g.fixedBatch.text !== undefined ? { fixedBatch: g.fixedBatch } : {}),
      ...(g.textIdsType && g.textIdsType !== 'int64' ? { textIdsType: g.textIdsType } : {}),
      tokenSources: sources,
      vision: shapes(g.visionIO),
      text: shapes(g.textIO),
      warnings,
    },
  };
}

// ------------------------------------------------------------------------------------------------
// entry point
// ------------------------------------------------------------------------------------------------

async function place(src: string, dst: string, link: 'copy' | 'symlink'): Promise<void> {
  await mkdir(dirname(dst), { recursive: true });
  await unlink(dst).catch(() => undefined);
  if (link === 'symlink') await symlink(relative(dirname(dst), src) || src, dst);
  else await copyFile(src, dst, fsConstants.COPYFILE_FICLONE);
}

/**
 * Recognizes the layout of `dir`, checks it and writes `manifest.json` into `dir` (or `opts.out`,
 * with the files it names copied or linked there under the same relative paths). Every failure is
 * a one-line `bundle_invalid` InferenceError naming the file and what was expected.
 */
export async function importClip(dir: string, opts: ImportClipOptions = {}): Promise<ImportClipResult> {
  const src = resolve(dir);
  const layout = opts.layout ?? (await detectClipLayout(src, opts.variant));
  const draft = layout === 'open_clip' ? await draftOpenClip(src, opts) : await draftTransformersJs(src, opts);

  const parsed = manifestSchema.safeParse(draft.manifest);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return bad(join(src, 'manifest.json'), `the imported manifest does not match the schema at ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const manifest = parsed.data;
  const outDir = opts.out ? resolve(opts.out) : src;
  const written: string[] = [];
  if (outDir !== src) {
    const link = opts.link ?? 'copy';
    const rels = new Set(draft.files);
    // ONNX external weights (models over 2 GB) sit next to the graph
    for (const g of [manifest.graphs.vision.file, manifest.graphs.text.file]) {
      for (const ext of ['_data', '.data']) if (await exists(join(src, g + ext))) rels.add(g + ext);
    }
    for (const rel of rels) {
      const dst = join(outDir, rel);
      await place(join(src, rel), dst, link);
      written.push(dst);
    }
  }
  await mkdir(outDir, { recursive: true });
  const manifestFile = join(outDir, 'manifest.json');
  await writeFile(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
  written.unshift(manifestFile);
  return { manifest, written, layout, warnings: draft.warnings };
}

// CLI: npx tsx src/inference/import-clip.ts <dir> [--out DIR] [--symlink] [--name N] [--version V] [--variant X] [--layout L]
async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  const opts: ImportClipOptions = {};
  let dir: string | undefined;
  while (args.length) {
    const a = args.shift()!;
    const val = () => {
      const v = args.shift();
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--out') opts.out = val();
    else if (a === '--symlink') opts.link = 'symlink';
    else if (a === '--name') opts.name = val();
    else if (a === '--version') opts.version = val();
    else if (a === '--variant') opts.variant = val();
    else if (a === '--layout') opts.layout = val() as ClipLayout;
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: import-clip <dir> [--out DIR] [--symlink] [--name N] [--version V] [--variant quantized] [--layout open_clip|transformers.js]\n');
      return 0;
    } else if (!dir) dir = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!dir) throw new Error('usage: import-clip <dir> [--out DIR] [--symlink] [--name N] [--version V]');
  const r = await importClip(dir, opts);
  process.stdout.write(`${r.layout}: ${r.manifest.name}@${r.manifest.version}, E=${r.manifest.embedDim}, ${r.manifest.preprocess.size}px ${r.manifest.preprocess.resize}\n`);
  for (const w of r.warnings) process.stdout.write(`warning: ${w}\n`);
  for (const f of r.written) process.stdout.write(`wrote ${f}\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
