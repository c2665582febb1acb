import type { App } from '../../types.ts';
import { registerIngestImageBatch } from './batch.ts';
import { registerDeleteImage } from './delete.ts';
import { registerIngestImageFromUrl } from './from-url.ts';
import { registerGetImage } from './get.ts';
import { registerListImages } from './list.ts';
import { registerGetOriginal } from './original.ts';
import { registerGetThumbnail } from './thumbnail.ts';
import { registerUpdateImage } from './update.ts';
import { registerUploadImage } from './upload.ts';

export function registerImages(app: App) {
  registerUploadImage(app);
  registerIngestImageFromUrl(app);
  registerIngestImageBatch(app);
  registerListImages(app);
  registerGetImage(app);
  registerUpdateImage(app);
  registerDeleteImage(app);
  registerGetOriginal(app);
  registerGetThumbnail(app);
}
