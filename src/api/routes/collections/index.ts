import type { App } from '../../types.ts';
import { registerCreateCollection } from './create.ts';
import { registerDeleteCollection } from './delete.ts';
import { registerGetCollection } from './get.ts';
import { registerListCollections } from './list.ts';

export function registerCollections(app: App) {
  registerCreateCollection(app);
  registerListCollections(app);
  registerGetCollection(app);
  registerDeleteCollection(app);
}
