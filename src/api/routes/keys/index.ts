import type { App } from '../../types.ts';
import { registerCreateKey } from './create.ts';
import { registerListKeys } from './list.ts';
import { registerRevokeKey } from './revoke.ts';

export function registerKeys(app: App) {
  registerCreateKey(app);
  registerListKeys(app);
  registerRevokeKey(app);
}
