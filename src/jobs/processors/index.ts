import type { JobKind, Processor } from '../types.ts';
import { ingestProcessor } from './ingest.ts';
import { reextractProcessor } from './reextract.ts';

/** Every processor; the startup check (processorTable) holds this list to one per kind. */
export const processors: Processor<any, any>[] = [ingestProcessor, reextractProcessor];

/**
 * The job kinds this build can run. Bulk extraction, re-extraction and fine-tuning (the schema
 * already names them) arrive with their processors.
 */
export const IMPLEMENTED_KINDS: readonly JobKind[] = ['ingest', 'reextract'];
