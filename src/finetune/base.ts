import type { Model } from '../db/queries/models.ts';
import type { Manifest } from '../inference/manifest.ts';

/** Fewer distinct images than this cannot be split into training and a held-out score. */
export const MIN_IMAGES = 10;

/** Why the model cannot be fine-tuned, or undefined when it can (a BLIP bundle that carries its weights). */
export function notFinetunable(model: Model): string | undefined {
  const weights = (model.manifest as Manifest).weights;
  if (model.family === 'blip' && weights?.retrieval && weights.captioning) return undefined;
  return `${model.id} is not a BLIP bundle with weights/*.safetensors, so it cannot be fine-tuned`;
}
