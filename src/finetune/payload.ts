import { z } from 'zod';

/** Most pairs one job takes (they travel in the job's payload, in Postgres and Redis). */
export const MAX_PAIRS = 50_000;
export const MAX_CAPTION_CHARS = 1000;

export const captionText = z.string().trim().min(1).max(MAX_CAPTION_CHARS);

/** Fine-tuning settings a caller may choose; the defaults are the trainer's, tuned for the default model. */
export const finetuneOptions = z.object({
  steps: z.number().int().min(0).max(100_000).default(200),
  /** Fraction of the images held out for the before/after R@1. */
  holdout: z.number().min(0.02).max(0.5).default(0.1),
  batch: z.number().int().min(2).max(1024).default(32),
  lr: z.number().positive().max(1).default(5e-5),
  seed: z.number().int().min(0).max(2 ** 31 - 1).default(0),
  device: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
  /** Start re-extracting the collection with the new version when it is registered. */
  reextract: z.boolean().default(false),
  /** The trainer is stopped after this long and the job fails (the active model is unchanged). */
  timeoutSeconds: z.number().int().min(1).max(7 * 24 * 3600).default(3600),
});

export const finetunePayload = finetuneOptions.extend({
  collectionId: z.string().uuid(),
  source: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('captions'), include: z.enum(['all', 'edited']).default('all') }),
    z.object({
      kind: z.literal('pairs'),
      pairs: z.array(z.object({ imageId: z.string().uuid(), caption: captionText })).min(1).max(MAX_PAIRS),
    }),
  ]),
});
export type FinetunePayload = z.infer<typeof finetunePayload>;
export type FinetuneInput = z.input<typeof finetunePayload>;
