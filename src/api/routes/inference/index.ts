import type { App } from '../../types.ts';
import { registerCaption } from './captions.ts';
import { registerClassify } from './classify.ts';
import { registerEmbeddings } from './embeddings.ts';

export function registerInference(app: App) {
  registerCaption(app);
  registerClassify(app);
  registerEmbeddings(app);
}
