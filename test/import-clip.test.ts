import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { isInferenceError } from '../src/inference/errors.ts';
import { checkGraphIO, openGraph } from '../src/inference/graph-check.ts';
import { importClip } from '../src/inference/import-clip.ts';
import { manifestSchema, type Manifest } from '../src/inference/manifest.ts';
import { toPixelValues } from '../src/inference/preprocess.ts';
import { Runtime } from '../src/inference/runtime.ts';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, 'fixtures', 'clip');
const OPEN_CLIP = join(fixtures, 'open_clip');
const TJS = join(fixtures, 'transformers.js');
const expected = JSON.parse(readFileSync(join(fixtures, 'expected.json'), 'utf8')) as {
  texts: string[];
  ids: number[][];
  embedDim: number;
  size: number;
  contextLength: number;
  eot: number;
  sot: number;
  open_clip: { image_embedding: number[]; text_embedding_pad_eot: number[]; text_embedding_pad_0: number[] };
  'transformers.js': { image_embeds: number[][]; text_embeds: number[][]; ids_padded: number[][]; mask: number[][] };
};
const E = expected.embedDim;
const S = expected.size;

const tmpRoot = mkdtempSync(join(tmpdir(), 'mira-import-clip-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));
let n = 0;
/** A private copy of a fixture layout to damage. */
function copyOf(src: string): string {
  const d = join(tmpRoot, `case${n++}`);
  cpSync(src, d, { recursive: true });
  return d;
}

/** The pixels make_clip_fixtures.py feeds: torch.linspace(-1.5, 1.5, 2*3*S*S). */
function linspacePixels(batch: number): Float32Array {
  const total = 2 * 3 * S * S;
  const out = new Float32Array(batch * 3 * S * S);
  for (let i = 0; i < out.length; i++) out[i] = -1.5 + (3 * i) / (total - 1);
  return out;
}

async function runGraph(dir: string, file: string, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType> {
  const s = await ort.InferenceSession.create(join(dir, file));
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

/** Tokenizes per the manifest (padding `max` or `longest`, the manifest's pad id). */
function tokenize(dir: string, m: Manifest, texts: string[]): { ids: number[][]; mask: number[][]; length: number } {
  const tok = new Tokenizer(JSON.parse(readFileSync(join(dir, m.tokenizer.file), 'utf8')), {});
  const rows = texts.map((t) => tok.encode(t).ids.slice(0, m.tokenizer.maxLength));
  const length = m.tokenizer.padding === 'max' ? m.tokenizer.maxLength : Math.max(...rows.map((r) => r.length));
  return {
    ids: rows.map((r) => [...r, ...Array<number>(length - r.length).fill(m.tokenizer.specialTokens.pad)]),
    mask: rows.map((r) => [...Array<number>(r.length).fill(1), ...Array<number>(length - r.length).fill(0)]),
    length,
  };
}

function expectClose(got: ArrayLike<number>, want: number[], tol = 1e-4): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `index ${i}`).toBeLessThan(tol);
}

async function expectImportError(p: Promise<unknown>, ...parts: (string | RegExp)[]): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(isInferenceError(e, 'bundle_invalid'), String(e)).toBe(true);
    const msg = (e as Error).message;
    expect(msg).not.toMatch(/\n/);
    for (const part of parts) expect(msg).toMatch(part);
    return msg;
  }
  throw new Error('expected the import to fail');
}

describe('open_clip / Immich layout', () => {
  it('imports into an --out folder with a manifest the schema accepts', async () => {
    const out = join(tmpRoot, 'oc-out');
    const r = await importClip(OPEN_CLIP, { out, name: 'tiny-clip', version: '2' });
    expect(r.layout).toBe('open_clip');
    const m = manifestSchema.parse(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')));
    expect(m).toEqual(r.manifest);
    expect(m.family).toBe('clip');
    expect(`${m.name}@${m.version}`).toBe('tiny-clip@2');
    expect(m.embedDim).toBe(E);
    expect(m.preprocess).toMatchObject({ size: S, resize: 'shortest-crop', kernel: 'bicubic', alpha: { mode: 'drop' } });
    expect(m.tokenizer).toEqual({
      file: 'textual/tokenizer.json',
      maxLength: 77,
      padding: 'max',
      // Immich pads with tokenizer_config.json's pad_token (<|endoftext|>)
      specialTokens: { pad: expected.eot, eos: expected.eot },
    });
    expect(m.graphs.vision).toEqual({ file: 'visual/model.onnx', inputs: { pixelValues: 'image' }, outputs: { imageFeat: 'embedding' } });
    expect(m.graphs.text).toEqual({ file: 'textual/model.onnx', inputs: { inputIds: 'text' }, outputs: { textFeat: 'embedding' } });
    expect(r.written).toContain(join(out, 'manifest.json'));
    expect(r.written).toContain(join(out, 'visual/model.onnx'));
    expect(r.written).toContain(join(out, 'textual/tokenizer.json'));
    // what the manifest cannot say is reported
    expect(r.warnings.join('\n')).toMatch(/fixed batch of 1/);
    expect(r.warnings.join('\n')).toMatch(/int32 token ids/);
    expect((m.about?.importer as { textIdsType?: string }).textIdsType).toBe('int32');
  });

  it('runs the imported graphs: [B, E] features equal to PyTorch', async () => {
    const out = join(tmpRoot, 'oc-run');
    const { manifest: m } = await importClip(OPEN_CLIP, { out });
    // vision: fixed batch 1
    const v = await runGraph(out, m.graphs.vision.file, { image: new ort.Tensor('float32', linspacePixels(1), [1, 3, S, S]) });
    const feat = v[m.graphs.vision.outputs.imageFeat]!;
    expect(feat.dims).toEqual([1, E]);
    expectClose(feat.data as Float32Array, expected.open_clip.image_embedding);
    // preprocessing per the manifest feeds the graph too
    const px = await toPixelValues(readFileSync(join(here, 'fixtures/pil/images/photo_land_160x90.png')), m.preprocess, { maxPixels: 1e7, maxBytes: 1e7 });
    const v2 = await runGraph(out, m.graphs.vision.file, { image: new ort.Tensor('float32', px, [1, 3, S, S]) });
    expect(v2.embedding!.dims).toEqual([1, E]);
    // text: the manifest's tokenizer settings give the fixture's ids, int32, padded to 77 with the pad id
    const t = tokenize(out, m, [expected.texts[0]!]);
    expect(t.ids[0]!.slice(0, expected.ids[0]!.length)).toEqual(expected.ids[0]);
    expect(t.length).toBe(77);
    const txt = await runGraph(out, m.graphs.text.file, { text: new ort.Tensor('int32', Int32Array.from(t.ids.flat()), [1, 77]) });
    expect(txt.embedding!.dims).toEqual([1, E]);
    expectClose(txt.embedding!.data as Float32Array, expected.open_clip.text_embedding_pad_eot);
  });

  it('imports in place and pads with 0 (open_clip) without a tokenizer_config.json', async () => {
    const dir = copyOf(OPEN_CLIP);
    unlinkSync(join(dir, 'textual/tokenizer_config.json'));
    const r = await importClip(dir);
    expect(r.written).toEqual([join(dir, 'manifest.json')]);
    const m = manifestSchema.parse(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')));
    expect(m.tokenizer.specialTokens).toEqual({ pad: 0, eos: expected.eot });
    expect(m.name).toMatch(/^case\d+$/);
    const t = tokenize(dir, m, [expected.texts[0]!]);
    const txt = await runGraph(dir, m.graphs.text.file, { text: new ort.Tensor('int32', Int32Array.from(t.ids.flat()), [1, 77]) });
    expectClose(txt.embedding!.data as Float32Array, expected.open_clip.text_embedding_pad_0);
    // pooling at the first EOT makes the pad id irrelevant
    expectClose(expected.open_clip.text_embedding_pad_0, expected.open_clip.text_embedding_pad_eot, 1e-6);
  });

  it('finds a top-level tokenizer.json', async () => {
    const dir = copyOf(OPEN_CLIP);
    cpSync(join(dir, 'textual/tokenizer.json'), join(dir, 'tokenizer.json'));
    unlinkSync(join(dir, 'textual/tokenizer.json'));
    const r = await importClip(dir);
    expect(r.manifest.tokenizer.file).toBe('tokenizer.json');
  });
});

describe('transformers.js layout', () => {
  it('imports with a manifest the schema accepts', async () => {
    const out = join(tmpRoot, 'tj-out');
    const r = await importClip(TJS, { out, link: 'symlink' });
    expect(r.layout).toBe('transformers.js');
    expect(r.warnings).toEqual([]);
    const m = manifestSchema.parse(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')));
    expect(m.embedDim).toBe(E);
    expect(m.preprocess).toMatchObject({ size: S, resize: 'shortest-crop', kernel: 'bicubic' });
    expect(m.preprocess.mean[0]).toBeCloseTo(0.48145466, 8);
    expect(m.tokenizer).toEqual({ file: 'tokenizer.json', maxLength: 77, padding: 'longest', specialTokens: { pad: expected.eot, eos: expected.eot } });
    expect(m.graphs.vision).toEqual({ file: 'onnx/vision_model.onnx', inputs: { pixelValues: 'pixel_values' }, outputs: { imageFeat: 'image_embeds' } });
    expect(m.graphs.text).toEqual({
      file: 'onnx/text_model.onnx',
      inputs: { inputIds: 'input_ids', attentionMask: 'attention_mask' },
      outputs: { textFeat: 'text_embeds' },
    });
  });

  it('runs the imported graphs: [B, E] features equal to PyTorch', async () => {
    const out = join(tmpRoot, 'tj-run');
    const { manifest: m } = await importClip(TJS, { out });
    const v = await runGraph(out, m.graphs.vision.file, { pixel_values: new ort.Tensor('float32', linspacePixels(2), [2, 3, S, S]) });
    expect(v.image_embeds!.dims).toEqual([2, E]);
    expectClose(v.image_embeds!.data as Float32Array, expected['transformers.js'].image_embeds.flat());
    const t = tokenize(out, m, expected.texts);
    expect(t.ids).toEqual(expected['transformers.js'].ids_padded);
    expect(t.mask).toEqual(expected['transformers.js'].mask);
    const feeds = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(t.ids.flat().map(BigInt)), [2, t.length]),
      attention_mask: new ort.Tensor('int64', BigInt64Array.from(t.mask.flat().map(BigInt)), [2, t.length]),
    };
    const txt = await runGraph(out, m.graphs.text.file, feeds);
    expect(txt.text_embeds!.dims).toEqual([2, E]);
    expectClose(txt.text_embeds!.data as Float32Array, expected['transformers.js'].text_embeds.flat());
  });

  it('reads a quantized variant when asked', async () => {
    const dir = copyOf(TJS);
    cpSync(join(dir, 'onnx/vision_model.onnx'), join(dir, 'onnx/vision_model_quantized.onnx'));
    cpSync(join(dir, 'onnx/text_model.onnx'), join(dir, 'onnx/text_model_quantized.onnx'));
    const r = await importClip(dir, { variant: 'quantized' });
    expect(r.manifest.graphs.vision.file).toBe('onnx/vision_model_quantized.onnx');
  });
});

describe('one-line errors naming the file', () => {
  it('missing graphs', async () => {
    let dir = copyOf(OPEN_CLIP);
    unlinkSync(join(dir, 'textual/model.onnx'));
    await expectImportError(importClip(dir), /textual\/model\.onnx: missing/);
    dir = copyOf(TJS);
    unlinkSync(join(dir, 'onnx/vision_model.onnx'));
    await expectImportError(importClip(dir), /onnx\/vision_model\.onnx: missing/);
    await expectImportError(importClip(join(tmpRoot)), /not a CLIP export: expected visual\/model\.onnx/);
  });

  it('missing side files', async () => {
    let dir = copyOf(OPEN_CLIP);
    unlinkSync(join(dir, 'visual/preprocess_cfg.json'));
    await expectImportError(importClip(dir), /visual\/preprocess_cfg\.json: missing \(expected the open_clip preprocess config/);
    dir = copyOf(OPEN_CLIP);
    unlinkSync(join(dir, 'textual/tokenizer.json'));
    await expectImportError(importClip(dir), /textual\/tokenizer\.json: missing/);
    dir = copyOf(TJS);
    unlinkSync(join(dir, 'preprocessor_config.json'));
    await expectImportError(importClip(dir), /preprocessor_config\.json: missing/);
  });

  it('wrong input and output names', async () => {
    // a transformers.js vision graph where Immich's belongs: input pixel_values, not image
    let dir = copyOf(OPEN_CLIP);
    cpSync(join(TJS, 'onnx/vision_model.onnx'), join(dir, 'visual/model.onnx'));
    await expectImportError(importClip(dir), /visual\/model\.onnx: expected input "image", the graph has inputs \[pixel_values\]/);
    // the text graph where the vision graph belongs
    dir = copyOf(TJS);
    cpSync(join(TJS, 'onnx/text_model.onnx'), join(dir, 'onnx/vision_model.onnx'));
    await expectImportError(importClip(dir), /onnx\/vision_model\.onnx: expected input "pixel_values", the graph has inputs \[input_ids, attention_mask\]/);
    // Immich's text graph in a transformers.js folder: names and outputs differ
    dir = copyOf(TJS);
    cpSync(join(OPEN_CLIP, 'textual/model.onnx'), join(dir, 'onnx/text_model.onnx'));
    await expectImportError(importClip(dir), /onnx\/text_model\.onnx: expected input "input_ids", the graph has inputs \[text\]/);
  });

  it('feature and size mismatches', async () => {
    let dir = copyOf(OPEN_CLIP);
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, embed_dim: 32 }));
    await expectImportError(importClip(dir), /visual\/model\.onnx: output "embedding" has dimension 16, but config\.json embed_dim says 32/);

    dir = copyOf(TJS);
    const tcfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...tcfg, projection_dim: 8 }));
    await expectImportError(importClip(dir), /onnx\/vision_model\.onnx: output "image_embeds" has dimension 16, but config\.json projection_dim says 8/);

    dir = copyOf(OPEN_CLIP);
    const pp = JSON.parse(readFileSync(join(dir, 'visual/preprocess_cfg.json'), 'utf8'));
    writeFileSync(join(dir, 'visual/preprocess_cfg.json'), JSON.stringify({ ...pp, size: [64, 64] }));
    await expectImportError(importClip(dir), /visual\/preprocess_cfg\.json: size 64 disagrees with config\.json vision_cfg\.image_size 32/);
    unlinkSync(join(dir, 'config.json'));
    await expectImportError(importClip(dir), /visual\/model\.onnx: input "image" has shape \[1, 3, 32, 32\], but visual\/preprocess_cfg\.json says the image size is 64/);

    dir = copyOf(OPEN_CLIP);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, text_cfg: { context_length: 64 } }));
    await expectImportError(importClip(dir), /textual\/model\.onnx: input "text" has a fixed length of 77, but config\.json text_cfg\.context_length says 64/);
  });

  it('unsupported preprocessing and broken files', async () => {
    let dir = copyOf(OPEN_CLIP);
    const pp = JSON.parse(readFileSync(join(dir, 'visual/preprocess_cfg.json'), 'utf8'));
    writeFileSync(join(dir, 'visual/preprocess_cfg.json'), JSON.stringify({ ...pp, resize_mode: 'longest' }));
    await expectImportError(importClip(dir), /visual\/preprocess_cfg\.json: resize_mode "longest" is not supported/);

    dir = copyOf(TJS);
    const hf = JSON.parse(readFileSync(join(dir, 'preprocessor_config.json'), 'utf8'));
    writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify({ ...hf, size: { shortest_edge: 40 } }));
    await expectImportError(importClip(dir), /preprocessor_config\.json: resizing the shortest edge to 40 then cropping 32 is not supported/);

    dir = copyOf(OPEN_CLIP);
    writeFileSync(join(dir, 'visual/model.onnx'), 'not a model');
    await expectImportError(importClip(dir), /visual\/model\.onnx: not a valid ONNX model/);

    dir = copyOf(OPEN_CLIP);
    writeFileSync(join(dir, 'textual/tokenizer.json'), '{"model": {"type": "Nope"}}');
    await expectImportError(importClip(dir), /textual\/tokenizer\.json: not a tokenizer\.json/);

    dir = copyOf(TJS);
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ pad_token: '<pad>' }));
    await expectImportError(importClip(dir), /tokenizer_config\.json: the pad token "<pad>" is not in the vocabulary/);
  });
});

describe('checkGraphIO (shared with the bundle loader)', () => {
  const vision = join(TJS, 'onnx/vision_model.onnx');
  const text = join(TJS, 'onnx/text_model.onnx');

  it('accepts a path, a session or a described graph', async () => {
    const io = await checkGraphIO(vision, { inputs: ['pixel_values'], outputs: ['image_embeds'], dims: { image_embeds: [null, E] } }, vision);
    expect(io.inputs[0]).toEqual({ name: 'pixel_values', type: 'float32', shape: ['batch_size', 3, S, S] });
    const session = await openGraph(text);
    try {
      await checkGraphIO(session, { inputs: ['input_ids', 'attention_mask'], outputs: ['text_embeds'], types: { input_ids: 'int64' } }, text);
    } finally {
      await session.release();
    }
    // the runtime's GraphInfo (string shapes) works too
    const info = { inputs: [{ name: 'pixel_values', shape: ['batch', '3', '32', '32'] }], outputs: [{ name: 'image_embeds', shape: ['batch', '16'] }] };
    await checkGraphIO(info, { inputs: ['pixel_values'], outputs: ['image_embeds'], dims: { image_embeds: [null, E] } }, 'vision.onnx');
    await expectImportError(
      checkGraphIO(info, { inputs: ['pixel_values'], outputs: ['image_embeds'], dims: { image_embeds: [null, 32] } }, 'vision.onnx'),
      /^vision\.onnx: output "image_embeds" has shape \[batch, 16\], expected \[\*, 32\]$/,
    );
  });

  it('names the file and the difference', async () => {
    await expectImportError(checkGraphIO(vision, { inputs: ['pixel_values'], outputs: ['embedding'] }, 'v.onnx'), /^v\.onnx: expected output "embedding", the graph has outputs \[image_embeds, last_hidden_state\]$/);
    await expectImportError(checkGraphIO(text, { inputs: ['input_ids'], outputs: ['text_embeds'] }, text), /text_model\.onnx: the graph needs input \[attention_mask\] that would not be fed/);
    await expectImportError(checkGraphIO(text, { inputs: ['input_ids', 'attention_mask'], outputs: ['text_embeds'], types: { input_ids: 'int32' } }, 't.onnx'), /^t\.onnx: input "input_ids" is int64, expected int32$/);
    await expectImportError(checkGraphIO(join(tmpRoot, 'nope.onnx'), { inputs: [], outputs: [] }, 'x'), /nope\.onnx: missing/);
  });
});

describe('imported CLIP bundles in the runtime', () => {
  const unit = (v: number[]) => {
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };

  it('open_clip/Immich: int32 ids and a fixed batch of 1 still batch-serve concurrent callers', async () => {
    const out = join(tmpRoot, 'oc-runtime');
    await importClip(OPEN_CLIP, { out });
    const rt = await Runtime.open(out, { threads: 1 });
    try {
      const feats = await Promise.all([rt.embedTexts([expected.texts[0]!]), rt.embedTexts([expected.texts[0]!])]);
      for (const [f] of feats) expectClose(f!, unit(expected.open_clip.text_embedding_pad_eot));
      const img = await rt.embedPixels(linspacePixels(1));
      expectClose(img.feat, unit(expected.open_clip.image_embedding));
    } finally {
      await rt.close();
    }
  });

  it('transformers.js: batched text and image features equal PyTorch, normalized', async () => {
    const out = join(tmpRoot, 'tj-runtime');
    await importClip(TJS, { out });
    const rt = await Runtime.open(out, { threads: 1 });
    try {
      const texts = await rt.embedTexts(expected.texts);
      texts.forEach((f, i) => expectClose(f, unit(expected['transformers.js'].text_embeds[i]!)));
      const px = linspacePixels(2);
      const per = 3 * S * S;
      const imgs = await Promise.all([0, 1].map((i) => rt.embedPixels(px.slice(i * per, (i + 1) * per))));
      imgs.forEach((e, i) => expectClose(e.feat, unit(expected['transformers.js'].image_embeds[i]!)));
    } finally {
      await rt.close();
    }
  });
});
