import type { App } from '../../types.ts';
import { registerCancelJob } from './cancel.ts';
import { registerExtract } from './extract.ts';
import { registerJobFiles } from './files.ts';
import { registerFinetune } from './finetune.ts';
import { registerGetJob } from './get.ts';
import { registerListJobs } from './list.ts';

export function registerJobs(app: App) {
  registerListJobs(app);
  registerGetJob(app);
  registerCancelJob(app);
  registerFinetune(app);
  registerExtract(app);
  registerJobFiles(app);
}
