import { z } from 'zod';

/**
 * The bundle contract (see models/README.md). A bundle is a folder with a manifest.json that
 * names every graph, its inputs and outputs, the preprocessing and the tokenizer. Nothing about a
 * model's size or names is hard-coded in the runtime: it all comes from here.
 */

const ioNames = z.record(z.string(), z.string().min(1));

const graphSpec = <I extends z.ZodRawShape, O extends z.ZodRawShape>(inputs: I, outputs: O) =>
  z.strictObject({
    file: z.string().min(1),
    inputs: z.strictObject(inputs),
    outputs: z.strictObject(outputs),
  });

export const visionGraph = graphSpec(
  { pixelValues: z.string().min(1) },
  {
    /** L2-normalized ITC (or CLIP) image feature [B, E]. */
    imageFeat: z.string().min(1),
    /** The image token sequence [B, N, D] for ITM and the decoder (BLIP only). */
    imageEmbeds: z.string().min(1).optional(),
  },
);

export const textGraph = graphSpec(
  { inputIds: z.string().min(1), attentionMask: z.string().min(1).optional() },
  { textFeat: z.string().min(1) },
);

const groundedInputs = {
  inputIds: z.string().min(1),
  attentionMask: z.string().min(1),
  imageEmbeds: z.string().min(1),
};

export const itmGraph = graphSpec(groundedInputs, { logits: z.string().min(1) });
export const decoderGraph = graphSpec(groundedInputs, { logits: z.string().min(1) });
/** Vision encoder used only for captions, when the captioner's encoder differs from the retriever's. */
export const captionVisionGraph = graphSpec(
  { pixelValues: z.string().min(1) },
  { imageEmbeds: z.string().min(1) },
);

export const preprocessSpec = z.strictObject({
  /** Square input side in pixels. */
  size: z.number().int().positive(),
  /** `squash`: resize straight to size × size (BLIP). `shortest-crop`: shortest side to size, then center crop (CLIP). */
  resize: z.enum(['squash', 'shortest-crop']),
  kernel: z.enum(['bicubic', 'bilinear', 'nearest', 'lanczos3']),
  mean: z.tuple([z.number(), z.number(), z.number()]),
  std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
  /**
   * How transparency is removed. `drop` discards the alpha channel and keeps the stored colour, as
   * PIL's `.convert('RGB')` does in BLIP's and CLIP's reference transforms; `flatten` composites
   * over `background`.
   */
  alpha: z.strictObject({
    mode: z.enum(['drop', 'flatten']),
    background: z.tuple([z.number().int().min(0).max(255), z.number().int().min(0).max(255), z.number().int().min(0).max(255)]).default([255, 255, 255]),
  }),
});

export const tokenizerSpec = z.strictObject({
  file: z.string().min(1),
  /** Sequences are cut to this many tokens, special tokens included. */
  maxLength: z.number().int().positive(),
  /** `longest`: pad a batch to its longest sequence. `max`: always pad to maxLength (graphs with a fixed length, e.g. CLIP 77). */
  padding: z.enum(['longest', 'max']).default('longest'),
  specialTokens: z.strictObject({
    pad: z.number().int().nonnegative(),
    /** BLIP: the [CLS] id the tokenizer puts first. */
    cls: z.number().int().nonnegative().optional(),
    /** End of sequence ([SEP] for BLIP, <|endoftext|> for CLIP). Generation stops on it. */
    eos: z.number().int().nonnegative(),
    /** BLIP's [ENC]: replaces the first token for ITM. */
    enc: z.number().int().nonnegative().optional(),
    /** BLIP's [DEC]: the decoder's BOS, replacing the first token of the prompt. */
    bos: z.number().int().nonnegative().optional(),
  }),
});

export const captionSpec = z.strictObject({
  prompt: z.string(),
  maxLength: z.number().int().positive(),
  minLength: z.number().int().nonnegative(),
  numBeams: z.number().int().positive(),
  repetitionPenalty: z.number().positive(),
});

export const manifestSchema = z
  .strictObject({
    schemaVersion: z.literal(1),
    family: z.enum(['blip', 'clip']),
    name: z.string().min(1),
    version: z.string().min(1),
    /** Dimension E of the ITC / CLIP features. */
    embedDim: z.number().int().positive(),
    /** Shape [N, D] of the image token sequence (BLIP). */
    imageTokens: z.strictObject({ count: z.number().int().positive(), dim: z.number().int().positive() }).optional(),
    preprocess: preprocessSpec,
    tokenizer: tokenizerSpec,
    caption: captionSpec.optional(),
    /** ITM input: `enc` replaces the first token with [ENC] (BLIP's retrieval), `cls` keeps [CLS]. */
    itm: z.strictObject({ firstToken: z.enum(['enc', 'cls']).default('enc') }).optional(),
    /** Zero-shot classification prompt; `{}` is replaced by the label. */
    classify: z.strictObject({ template: z.string().includes('{}') }).default({ template: 'a picture of {}' }),
    graphs: z.strictObject({
      vision: visionGraph,
      text: textGraph,
      itm: itmGraph.optional(),
      decoder: decoderGraph.optional(),
      captionVision: captionVisionGraph.optional(),
    }),
    /** Optional safetensors files under Hugging Face key names, for fine-tuning. */
    weights: z.record(z.string(), z.string()).optional(),
    /** Free-form provenance: how it was trained or exported, evaluation figures. */
    about: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine((m, ctx) => {
    if (m.family === 'blip') {
      for (const g of ['itm', 'decoder'] as const) {
        if (!m.graphs[g]) ctx.addIssue({ code: 'custom', path: ['graphs', g], message: `a blip bundle needs the ${g} graph` });
      }
      if (!m.graphs.vision.outputs.imageEmbeds) {
        ctx.addIssue({ code: 'custom', path: ['graphs', 'vision', 'outputs', 'imageEmbeds'], message: 'a blip vision graph must output the image token sequence' });
      }
      if (!m.imageTokens) ctx.addIssue({ code: 'custom', path: ['imageTokens'], message: 'a blip bundle must give imageTokens {count, dim}' });
      if (!m.caption) ctx.addIssue({ code: 'custom', path: ['caption'], message: 'a blip bundle must give captioning defaults' });
      const st = m.tokenizer.specialTokens;
      for (const t of ['enc', 'bos', 'cls'] as const) {
        if (st[t] === undefined) ctx.addIssue({ code: 'custom', path: ['tokenizer', 'specialTokens', t], message: `a blip bundle must give the ${t} token id` });
      }
    }
  });

export type Manifest = z.infer<typeof manifestSchema>;
export type GraphName = keyof Manifest['graphs'];
export type PreprocessSpec = z.infer<typeof preprocessSpec>;
