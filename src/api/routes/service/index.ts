import type { App } from '../../types.ts';
import { registerHealthz } from './healthz.ts';
import { registerReadyz } from './readyz.ts';

export function registerService(app: App) {
  registerHealthz(app);
  registerReadyz(app);
}
