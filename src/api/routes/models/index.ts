import type { App } from '../../types.ts';
import { registerActivateModel } from './activate.ts';
import { registerListModels } from './list.ts';
import { registerRegisterModel } from './register.ts';

export function registerModels(app: App) {
  registerListModels(app);
  registerRegisterModel(app);
  registerActivateModel(app);
}
