import type { JobKind, Processor } from '../types.ts';
import { extractProcessor } from './extract.ts';
import { finetuneProcessor } from './finetune.ts';
import { ingestProcessor } from './ingest.ts';
import { reextractProcessor } from './reextract.ts';

/** Every processor; the startup check (processorTable) holds this list to one per kind. */
export const processors: Processor<any, any>[] = [ingestProcessor, extractProcessor, reextractProcessor, finetuneProcessor];

/** The job kinds this build can run: every kind the schema names. */
export const IMPLEMENTED_KINDS: readonly JobKind[] = ['ingest', 'extract', 'reextract', 'finetune'];
