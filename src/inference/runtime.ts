import { join } from 'node:path';
import { DynamicBatcher, type BatchEvent } from './batcher.ts';
import { readManifest, checkGraph } from './bundle.ts';
import { beamSearch, greedy, logProbOf, nucleus, seededRandom, type SearchResult, type StepFn } from './decoding.ts';
import { InferenceError } from './errors.ts';
import type { GraphName, Manifest } from './manifest.ts';
import { InferencePool, type PoolOptions } from './pool.ts';
import { TextTokenizer } from './tokenizer.ts';
import type { GraphInfo, ImageLimits, OutputTensor, WireTensor } from './wire.ts';

export interface RuntimeOptions extends PoolOptions {
  /** Largest batch per graph call. */
  maxBatch?: number;
  /** How long a lone request waits for others to share its batch. */
  maxWaitMs?: number;
  limits?: Partial<ImageLimits>;
  /** Called for every batch a graph runs (metrics). */
  onBatch?: (graph: GraphName, e: BatchEvent) => void;
  /** Called once for warnings such as a CUDA fallback. */
  onWarning?: (message: string) => void;
  /** A pool shared with other runtimes (sessions are per graph file); closing this runtime leaves it open. */
  pool?: InferencePool;
  /** How to caption when a call names no method (ingest, search captions, extraction); unset, the bundle's. */
  captionMethod?: CaptionMethod;
}

export interface ImageEmbedding {
  /** L2-normalized ITC / CLIP feature [E]. */
  feat: Float32Array;
  /** Image token sequence [N * D], row-major (BLIP only). */
  tokens?: Float32Array;
}

export interface ItmScore {
  /** The match logit, logits[1]; BLIP ranks by this plus the ITC cosine. */
  logit: number;
  /** softmax(logits)[1]. */
  prob: number;
}

/**
 * `beam-itm`: beam search, then the numBeams best hypotheses are scored again by the ITM head and the one
 * with the highest ITM match logit + length-normalised log-probability is kept (needs an ITM graph).
 */
export type CaptionMethod = 'greedy' | 'beam' | 'beam-itm' | 'nucleus';
export const CAPTION_METHODS = ['greedy', 'beam', 'beam-itm', 'nucleus'] as const satisfies readonly CaptionMethod[];
/** Beams for `beam-itm` when neither the request nor the bundle asks for more. */
export const ITM_CAPTION_BEAMS = 5;
export interface CaptionOptions {
  method?: CaptionMethod;
  numBeams?: number;
  maxLength?: number;
  minLength?: number;
  repetitionPenalty?: number;
  topP?: number;
  temperature?: number;
  seed?: number;
  prompt?: string;
}
export interface Caption {
  text: string;
  ids: number[];
  logProb: number;
}

export const DEFAULT_LIMITS: ImageLimits = { maxPixels: 40_000_000, maxBytes: 50 * 1024 * 1024 };

/** Everything Mira asks of a model, from a bundle folder. Inference runs in worker threads. */
export class Runtime {
  private readonly vision: DynamicBatcher<Float32Array, ImageEmbedding>;
  private readonly text: DynamicBatcher<number[], Float32Array>;
  private readonly limits: ImageLimits;
  private readonly onBatch: RuntimeOptions['onBatch'];
  private readonly captionMethod: CaptionMethod | undefined;

  private constructor(
    readonly dir: string,
    readonly manifest: Manifest,
    readonly tokenizer: TextTokenizer,
    private readonly pool: InferencePool,
    readonly provider: string,
    opts: RuntimeOptions,
    private readonly ownsPool: boolean,
    private readonly meta: GraphMeta,
  ) {
    this.onBatch = opts.onBatch;
    this.captionMethod = opts.captionMethod;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    const batching = (g: GraphName) => ({ maxBatch: this.batchOf(g), maxWaitMs: opts.maxWaitMs ?? 2, maxInFlight: pool.size.threads });
    this.vision = new DynamicBatcher((px) => this.runVision(px), batching('vision'), (e) => opts.onBatch?.('vision', e));
    this.text = new DynamicBatcher((ids) => this.runText(ids), batching('text'), (e) => opts.onBatch?.('text', e));
  }

  static async open(dir: string, opts: RuntimeOptions = {}): Promise<Runtime> {
    const manifest = await readManifest(dir);
    const tokenizer = await TextTokenizer.load(join(dir, manifest.tokenizer.file), manifest);
    const pool = opts.pool ?? new InferencePool(opts);
    try {
      let provider = 'cpu';
      const meta: GraphMeta = {};
      for (const [name, graph] of Object.entries(manifest.graphs)) {
        if (!graph) continue;
        const file = join(dir, graph.file);
        const info = await pool.load(file).catch((err: Error) => {
          throw new InferenceError('bundle_invalid', `${file}: not a loadable ONNX graph (${err.message.split('\n')[0]})`);
        });
        checkGraph(manifest, name as GraphName, info, file);
        meta[name as GraphName] = graphMeta(info, graph.inputs, opts.maxBatch ?? 32);
        provider = info.provider;
      }
      if (opts.executionProvider === 'cuda' && provider !== 'cuda') opts.onWarning?.(`falling back to ${provider}`);
      const runtime = new Runtime(dir, manifest, tokenizer, pool, provider, opts, !opts.pool, meta);
      await runtime.probe();
      return runtime;
    } catch (err) {
      if (!opts.pool) await pool.close();
      throw err;
    }
  }

  /** Runs each encoder once on a dummy input: symbolic output shapes are only checked this way. */
  private async probe(): Promise<void> {
    const m = this.manifest;
    const s = m.preprocess.size;
    const img = await this.embedPixels(new Float32Array(3 * s * s));
    const where = (g: 'vision' | 'text') => join(this.dir, m.graphs[g].file);
    if (img.feat.length !== m.embedDim) {
      throw new InferenceError('bundle_invalid', `${where('vision')}: the image feature dimension is ${img.feat.length} but the manifest says ${m.embedDim}`);
    }
    if (m.imageTokens && img.tokens && img.tokens.length !== m.imageTokens.count * m.imageTokens.dim) {
      throw new InferenceError('bundle_invalid', `${where('vision')}: the image tokens have ${img.tokens.length} values, the manifest says ${m.imageTokens.count} × ${m.imageTokens.dim}`);
    }
    const [txt] = await this.embedTexts(['a']);
    if (txt!.length !== m.embedDim) {
      throw new InferenceError('bundle_invalid', `${where('text')}: the text feature dimension is ${txt!.length} but the manifest says ${m.embedDim}`);
    }
  }

  get id(): string {
    return `${this.manifest.name}@${this.manifest.version}`;
  }

  get threads() {
    return this.pool.threads;
  }

  get poolSize() {
    return this.pool.size;
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.close();
  }

  /** Decodes, validates and preprocesses one encoded image, in a worker thread. */
  pixels(bytes: Uint8Array): Promise<Float32Array> {
    return this.pool.preprocess(bytes, this.manifest.preprocess, this.limits);
  }

  async embedImages(images: Uint8Array[]): Promise<ImageEmbedding[]> {
    return Promise.all(images.map(async (bytes) => this.vision.submit(await this.pixels(bytes))));
  }

  /** For already preprocessed pixels [3, S, S] (parity checks, benchmarks). */
  embedPixels(pixels: Float32Array): Promise<ImageEmbedding> {
    return this.vision.submit(pixels);
  }

  embedTexts(texts: string[]): Promise<Float32Array[]> {
    return this.text.submitAll(texts.map((t) => this.tokenizer.encode(t)));
  }

  embedTokenIds(ids: number[]): Promise<Float32Array> {
    return this.text.submit(ids);
  }

  /** ITM of one text against many candidates' token sequences, in batches of maxBatch. */
  itmScores(text: string, candidates: Float32Array[]): Promise<ItmScore[]> {
    return this.itmScoresForIds(this.tokenizer.encodeForItm(text), candidates);
  }

  itmScoresForIds(ids: number[], candidates: Float32Array[]): Promise<ItmScore[]> {
    return this.itmPairs(candidates.map(() => ids), candidates);
  }

  /** ITM of many texts against one image (image-to-text re-ranking). */
  itmScoresForTexts(texts: string[], tokens: Float32Array): Promise<ItmScore[]> {
    return this.itmScoresForPairs(texts, texts.map(() => tokens));
  }

  /** ITM of pair i = (texts[i], tokens[i]). */
  itmScoresForPairs(texts: string[], tokens: Float32Array[]): Promise<ItmScore[]> {
    return this.itmPairs(texts.map((t) => this.tokenizer.encodeForItm(t)), tokens);
  }

  /** Scores pair i = (ids[i], tokens[i]), in batches of maxBatch. */
  private async itmPairs(ids: number[][], tokens: Float32Array[]): Promise<ItmScore[]> {
    const out: ItmScore[] = [];
    for await (const { rows, logits } of this.groundedBatches('itm', ids, tokens)) {
      for (let i = 0; i < rows.length; i++) {
        const l0 = logits.data[2 * i]!;
        const l1 = logits.data[2 * i + 1]!;
        out.push({ logit: l1, prob: 1 / (1 + Math.exp(l0 - l1)) });
      }
    }
    return out;
  }

  /** Runs a grounded graph on pairs (ids[i], tokens[i]) in batches of maxBatch: each batch's rows and logits. */
  private async *groundedBatches(graph: 'itm' | 'decoder', ids: number[][], tokens: Float32Array[]): AsyncGenerator<{ rows: number[][]; logits: OutputTensor }> {
    const g = this.requireGraph(graph);
    const size = this.batchOf(graph);
    for (let start = 0; start < ids.length; start += size) {
      const rows = ids.slice(start, start + size);
      this.onBatch?.(graph, { size: rows.length, queueWaitMs: 0 });
      const res = await this.pool.run(join(this.dir, g.file), this.groundedFeeds(graph, g.inputs, rows, tokens.slice(start, start + size)), [g.outputs.logits]);
      yield { rows, logits: res[g.outputs.logits]! };
    }
  }

  async caption(image: Uint8Array | { tokens: Float32Array }, options: CaptionOptions = {}): Promise<Caption> {
    const opts = options.method || !this.captionMethod ? options : { ...options, method: this.captionMethod };
    const px = image instanceof Uint8Array ? await this.pixels(image) : undefined;
    const tokens = px ? await this.captionTokens(px) : (image as { tokens: Float32Array }).tokens;
    const prefix = this.tokenizer.encodePrompt(opts.prompt ?? this.manifest.caption!.prompt);
    if (opts.method === 'beam-itm') return this.captionCheckedByItm(px, tokens, prefix, opts);
    const result = await this.generate(tokens, prefix, opts);
    return { text: this.tokenizer.decode(result.ids), ids: result.ids, logProb: result.logProb };
  }

  private async captionCheckedByItm(px: Float32Array | undefined, tokens: Float32Array, prefix: number[], opts: CaptionOptions): Promise<Caption> {
    this.requireGraph('itm');
    if (!px && !this.decoderReadsItmTokens) {
      throw new InferenceError('inference_failed', `model ${this.id} captions from its own vision graph: beam-itm needs the image, not stored tokens`);
    }
    const itmTokens = px && !this.decoderReadsItmTokens ? (await this.embedPixels(px)).tokens! : tokens;
    const numBeams = opts.numBeams ?? Math.max(this.manifest.caption!.numBeams, ITM_CAPTION_BEAMS);
    const result = await this.generate(tokens, prefix, { ...opts, method: 'beam', numBeams });
    const hyps = (result.hypotheses ?? [{ ...result, score: 0 }]).slice(0, numBeams);
    const texts = hyps.map((h) => this.tokenizer.decode(h.ids));
    const itm = await this.itmScoresForTexts(texts, itmTokens);
    let best = 0;
    for (let i = 1; i < hyps.length; i++) if (itm[i]!.logit + hyps[i]!.score > itm[best]!.logit + hyps[best]!.score) best = i;
    return { text: texts[best]!, ids: hyps[best]!.ids, logProb: hyps[best]!.logProb };
  }

  /**
   * True when the decoder reads the same image tokens as ITM (no separate caption encoder), so that an
   * image's stored re-ranking tokens can also be scored by the LM head (`captionLogLikelihoods`).
   */
  get decoderReadsItmTokens(): boolean {
    return !!this.manifest.graphs.decoder && !this.manifest.graphs.captionVision;
  }

  /** Decodes new tokens after `prefix` for one image's decoder tokens. */
  generate(tokens: Float32Array, prefix: number[], opts: CaptionOptions = {}): Promise<SearchResult> {
    const defaults = this.manifest.caption!;
    const step: StepFn = (seqs) => this.decoderStep(seqs, tokens);
    const search = {
      eos: this.manifest.tokenizer.specialTokens.eos,
      maxNew: opts.maxLength ?? defaults.maxLength,
      minNew: opts.minLength ?? defaults.minLength,
      repetitionPenalty: opts.repetitionPenalty ?? defaults.repetitionPenalty,
    };
    const method = opts.method ?? (defaults.numBeams > 1 ? 'beam' : 'greedy');
    if (method === 'greedy') return greedy(step, prefix, search);
    if (method === 'beam') return beamSearch(step, prefix, { ...search, numBeams: opts.numBeams ?? defaults.numBeams });
    return nucleus(step, prefix, {
      ...search,
      topP: opts.topP ?? 0.9,
      temperature: opts.temperature ?? 1,
      random: seededRandom(opts.seed ?? Date.now()),
    });
  }

  /** Next-token logits [V] for each sequence (all of one length), grounded on one image's tokens. */
  async decoderStep(seqs: number[][], tokens: Float32Array): Promise<Float32Array[]> {
    const g = this.requireGraph('decoder');
    this.onBatch?.('decoder', { size: seqs.length, queueWaitMs: 0 });
    const res = await this.pool.run(join(this.dir, g.file), this.groundedFeeds('decoder', g.inputs, seqs, seqs.map(() => tokens)), [g.outputs.logits]);
    return lastPositionLogits(res[g.outputs.logits]!, seqs.length);
  }

  /**
   * The decoder's log-likelihood of each pair (texts[i] as a caption of the image with decoder tokens
   * tokens[i]): the summed log-probabilities of the text's tokens after the caption prompt, EOS included.
   * BLIP's LM head scoring a given caption instead of generating one.
   */
  async captionLogLikelihoods(texts: string[], tokens: Float32Array[], prompt = this.manifest.caption?.prompt ?? ''): Promise<number[]> {
    this.requireGraph('decoder');
    if (texts.length !== tokens.length) throw new RangeError(`${texts.length} texts for ${tokens.length} images`);
    const eos = this.manifest.tokenizer.specialTokens.eos;
    const promptLength = this.tokenizer.encodePrompt(prompt).length;
    // Re-ranking scores one query against every candidate: tokenized once.
    const encoded = new Map<string, number[]>();
    const encode = (t: string) => [...this.tokenizer.encodePrompt(prompt + t), eos].slice(0, this.manifest.tokenizer.maxLength);
    const ids = texts.map((t) => encoded.get(t) ?? encoded.set(t, encode(t)).get(t)!);
    const out: number[] = [];
    for await (const { rows, logits } of this.groundedBatches('decoder', ids, tokens)) {
      const vocab = logits.dims[logits.dims.length - 1]!;
      const perRow = logits.data.length / rows.length;
      rows.forEach((row, r) => {
        let sum = 0;
        // Position t - 1 predicts token t; padding comes after a row's last token and cannot reach it.
        for (let t = promptLength; t < row.length; t++) {
          const at = r * perRow + (t - 1) * vocab;
          sum += logProbOf(logits.data.subarray(at, at + vocab), row[t]!);
        }
        out.push(sum);
      });
    }
    return out;
  }

  /** Zero-shot classification: softmax over ITC similarities to the prompted labels. */
  async classify(image: Uint8Array, labels: string[], logitScale = 100): Promise<{ label: string; score: number }[]> {
    const template = this.manifest.classify.template;
    const [img, texts] = await Promise.all([
      this.embedImages([image]),
      this.embedTexts(labels.map((l) => template.replace('{}', l))),
    ]);
    const sims = texts.map((t) => dot(img[0]!.feat, t) * logitScale);
    const max = Math.max(...sims);
    const exps = sims.map((s) => Math.exp(s - max));
    const sum = exps.reduce((a, b) => a + b, 0);
    return labels.map((label, i) => ({ label, score: exps[i]! / sum })).sort((a, b) => b.score - a.score);
  }

  /** The decoder's image tokens for preprocessed pixels: from the caption encoder when the bundle has one. */
  async captionTokens(px: Float32Array): Promise<Float32Array> {
    const cv = this.manifest.graphs.captionVision;
    if (!cv) return (await this.embedPixels(px)).tokens!;
    const s = this.manifest.preprocess.size;
    const res = await this.pool.run(join(this.dir, cv.file), { [cv.inputs.pixelValues]: { type: 'float32', dims: [1, 3, s, s], data: px } }, [cv.outputs.imageEmbeds]);
    return res[cv.outputs.imageEmbeds]!.data;
  }

  private requireGraph<G extends 'itm' | 'decoder'>(name: G): NonNullable<Manifest['graphs'][G]> {
    const g = this.manifest.graphs[name];
    if (!g) throw new InferenceError('inference_failed', `model ${this.id} has no ${name} graph`);
    return g as NonNullable<Manifest['graphs'][G]>;
  }

  private batchOf(g: GraphName): number {
    return this.meta[g]?.maxBatch ?? 32;
  }

  private groundedFeeds(
    graph: 'itm' | 'decoder',
    names: { inputIds: string; attentionMask: string; imageEmbeds: string },
    rows: number[][],
    tokens: Float32Array[],
  ): Record<string, WireTensor> {
    const batch = this.tokenizer.pad(rows);
    const seq = this.tokenEmbedShape(tokens[0]!.length);
    const type = this.meta[graph]?.idType ?? 'int64';
    return {
      [names.inputIds]: { type, dims: [batch.rows, batch.length], data: batch.ids },
      [names.attentionMask]: { type, dims: [batch.rows, batch.length], data: batch.mask },
      [names.imageEmbeds]: { type: 'float32', dims: [tokens.length, ...seq], data: concat(tokens) },
    };
  }

  private tokenEmbedShape(length: number): [number, number] {
    const it = this.manifest.imageTokens!;
    if (length === it.count * it.dim) return [it.count, it.dim];
    // A separate caption encoder may have its own token count; its width is what divides evenly.
    const dim = it.dim;
    return [length / dim, dim];
  }

  private async runVision(items: Float32Array[]): Promise<ImageEmbedding[]> {
    const g = this.manifest.graphs.vision;
    const s = this.manifest.preprocess.size;
    const outputs = [g.outputs.imageFeat, ...(g.outputs.imageEmbeds ? [g.outputs.imageEmbeds] : [])];
    const res = await this.pool.run(join(this.dir, g.file), { [g.inputs.pixelValues]: { type: 'float32', dims: [items.length, 3, s, s], data: concat(items) } }, outputs);
    const feats = split(res[g.outputs.imageFeat]!, items.length).map(normalize);
    const tokens = g.outputs.imageEmbeds ? split(res[g.outputs.imageEmbeds]!, items.length) : undefined;
    return feats.map((feat, i) => ({ feat, ...(tokens ? { tokens: tokens[i]! } : {}) }));
  }

  private async runText(rows: number[][]): Promise<Float32Array[]> {
    const g = this.manifest.graphs.text;
    const batch = this.tokenizer.pad(rows);
    const type = this.meta.text?.idType ?? 'int64';
    const feeds: Record<string, WireTensor> = {
      [g.inputs.inputIds]: { type, dims: [batch.rows, batch.length], data: batch.ids },
    };
    if (g.inputs.attentionMask) feeds[g.inputs.attentionMask] = { type, dims: [batch.rows, batch.length], data: batch.mask };
    const res = await this.pool.run(join(this.dir, g.file), feeds, [g.outputs.textFeat]);
    return split(res[g.outputs.textFeat]!, rows.length).map(normalize);
  }
}

type GraphMeta = Partial<Record<GraphName, { idType: 'int64' | 'int32'; maxBatch: number }>>;

/** Id element type and batch limit of a graph: published graphs may take int32 ids or a fixed batch of 1. */
function graphMeta(info: GraphInfo, inputs: Record<string, string | undefined>, maxBatch: number) {
  const ids = info.inputs.find((i) => i.name === inputs.inputIds);
  const first = info.inputs.find((i) => i.name === (inputs.pixelValues ?? inputs.inputIds));
  const fixed = first?.shape?.[0];
  const fixedBatch = fixed !== undefined && /^\d+$/.test(fixed) ? Number(fixed) : undefined;
  return { idType: ids?.type === 'int32' ? ('int32' as const) : ('int64' as const), maxBatch: fixedBatch ? Math.min(fixedBatch, maxBatch) : maxBatch };
}

function lastPositionLogits(t: OutputTensor, rows: number): Float32Array[] {
  const vocab = t.dims[t.dims.length - 1]!;
  const perRow = t.data.length / rows;
  return Array.from({ length: rows }, (_, r) => t.data.slice(r * perRow + perRow - vocab, (r + 1) * perRow));
}

function split(t: OutputTensor, rows: number): Float32Array[] {
  const per = t.data.length / rows;
  return Array.from({ length: rows }, (_, r) => t.data.slice(r * per, (r + 1) * per));
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function normalize(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  const inv = 1 / Math.max(Math.sqrt(n), 1e-12);
  return v.map((x) => x * inv);
}

export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
