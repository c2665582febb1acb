import type { App } from '../../types.ts';
import { registerSearch } from './search.ts';
import { registerSearchByUpload } from './upload.ts';

export function registerSearchRoutes(app: App) {
  registerSearch(app);
  registerSearchByUpload(app);
}
