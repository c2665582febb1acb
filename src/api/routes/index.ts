import type { App } from '../types.ts';
import { registerCollections } from './collections/index.ts';
import { registerImages } from './images/index.ts';
import { registerInference } from './inference/index.ts';
import { registerJobs } from './jobs/index.ts';
import { registerKeys } from './keys/index.ts';
import { registerModels } from './models/index.ts';
import { registerSearchRoutes } from './search/index.ts';
import { registerService } from './service/index.ts';

/** Every documented route, in the order the spec lists them. */
export function registerRoutes(app: App): App {
  registerService(app);
  registerCollections(app);
  registerImages(app);
  registerSearchRoutes(app);
  registerInference(app);
  registerModels(app);
  registerJobs(app);
  registerKeys(app);
  return app;
}
