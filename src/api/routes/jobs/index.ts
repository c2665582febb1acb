import type { App } from '../../types.ts';
import { registerCancelJob } from './cancel.ts';
import { registerFinetune } from './finetune.ts';
import { registerGetJob } from './get.ts';
import { registerListJobs } from './list.ts';

export function registerJobs(app: App) {
  registerListJobs(app);
  registerGetJob(app);
  registerCancelJob(app);
  registerFinetune(app);
}
