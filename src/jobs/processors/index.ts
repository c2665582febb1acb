import type { JobKind, Processor } from '../types.ts';
import { finetuneProcessor } from './finetune.ts';
import { ingestProcessor } from './ingest.ts';
import { reextractProcessor } from './reextract.ts';

/** Every processor; the startup check (processorTable) holds this list to one per kind. */
export const processors: Processor<any, any>[] = [ingestProcessor, reextractProcessor, finetuneProcessor];

/**
 * The job kinds this build can run. Bulk extraction (the schema already names it) arrives with
 * its processor.
 */
export const IMPLEMENTED_KINDS: readonly JobKind[] = ['ingest', 'reextract', 'finetune'];
