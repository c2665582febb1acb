import type { App } from '../../types.ts';
import { registerCreateCollection } from './create.ts';
import { registerDeleteCollection } from './delete.ts';
import { registerDeleteCollectionVersion } from './delete-version.ts';
import { registerGetCollection } from './get.ts';
import { registerListCollections } from './list.ts';
import { registerReextractCollection } from './reextract.ts';
import { registerRollbackCollection } from './rollback.ts';

export function registerCollections(app: App) {
  registerCreateCollection(app);
  registerListCollections(app);
  registerGetCollection(app);
  registerDeleteCollection(app);
  registerReextractCollection(app);
  registerRollbackCollection(app);
  registerDeleteCollectionVersion(app);
}
