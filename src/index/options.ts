import type { Db } from '../db/client.ts';
import type { SaveStep } from './files.ts';
import type { Space } from './store.ts';

/** pino's shape, so a pino logger fits. */
export interface IndexLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export type IndexStep = SaveStep | 'compaction-built';

export interface OpenIndexOptions {
  db: Db;
  dataDir: string;
  collectionId: string;
  modelId: string;
  space?: Space;
  logger?: IndexLogger;
  /** Compact once tombstones are more than this share of the graph (default 0.2). */
  compactAbove?: number;
  /** See Horizon (default 1000 ms). */
  graceMs?: number;
  /** Slots of a graph built from scratch (default 1024); it doubles when full. */
  initialCapacity?: number;
  /** Rows per change page (default 2000). */
  pageSize?: number;
  /** Called between the steps of a save or compaction; crash tests kill the process here. */
  onStep?: (step: IndexStep) => void | Promise<void>;
}

export interface SyncResult {
  added: number;
  deleted: number;
  lastApplied: number;
}
