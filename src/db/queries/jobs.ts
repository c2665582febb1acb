import { and, count, desc, eq, getTableColumns, inArray, lt, sql, type SQL } from 'drizzle-orm';
import type { PgUpdateSetSource } from 'drizzle-orm/pg-core';
import type { Db } from '../client.ts';
import { FOREIGN_KEY_VIOLATION, NotFound, sqlState } from '../errors.ts';
import { jobs, type jobKinds, type jobStates } from '../schema/index.ts';
import { afterKeyset, checkLimit, decodeCursor, isUuid, keysetAt, toPage, type Page } from './page.ts';

const columns = getTableColumns(jobs);

export type Job = typeof jobs.$inferSelect;
export type JobKind = (typeof jobKinds)[number];
export type JobState = (typeof jobStates)[number];
export interface NewJob {
  /** Derived from the work (e.g. `collection:sha256`), so enqueuing twice is one job. */
  id: string;
  kind: JobKind;
  collectionId?: string | null;
  payload: unknown;
  progress?: { done: number; total: number } & Record<string, unknown>;
}
export interface JobPatch {
  state?: JobState;
  progress?: { done: number; total: number } & Record<string, unknown>;
  counts?: Record<string, number>;
  error?: string | null;
  result?: unknown;
}

const finished: readonly JobState[] = ['completed', 'failed', 'cancelled', 'lost'];

/** Records a job; the same id again returns the existing record unchanged. */
export async function createJob(db: Db, job: NewJob): Promise<{ job: Job; created: boolean }> {
  const [inserted] = await db
    .insert(jobs)
    .values(job)
    .onConflictDoNothing({ target: jobs.id })
    .returning(columns)
    .catch((err: unknown) => {
      if (sqlState(err) === FOREIGN_KEY_VIOLATION) throw new NotFound('collection', String(job.collectionId));
      throw err;
    });
  if (inserted) return { job: inserted, created: true };
  const existing = await getJob(db, job.id);
  if (!existing) throw new NotFound('job', job.id);
  return { job: existing, created: false };
}

export async function getJob(db: Db, id: string): Promise<Job | undefined> {
  const [row] = await db.select(columns).from(jobs).where(eq(jobs.id, id));
  return row;
}

/**
 * Applies the patch with its timestamps: `running` sets started_at (first time) and counts an
 * attempt, a finished state sets finished_at, `queued` clears it (a retry). With `from`, the update
 * only happens while the job is in one of those states, and undefined says it was not.
 */
export async function updateJob(db: Db, id: string, patch: JobPatch, opts: { from?: JobState[] } = {}): Promise<Job | undefined> {
  const set: PgUpdateSetSource<typeof jobs> = { ...patch, updatedAt: sql`now()` };
  if (patch.state === 'running') {
    set.startedAt = sql`coalesce(${jobs.startedAt}, now())`;
    set.attempts = sql`${jobs.attempts} + 1`;
    set.finishedAt = null;
  } else if (patch.state && finished.includes(patch.state)) {
    set.finishedAt = sql`now()`;
  } else if (patch.state === 'queued') {
    set.finishedAt = null;
  }
  const where = opts.from ? and(eq(jobs.id, id), inArray(jobs.state, opts.from)) : eq(jobs.id, id);
  const [row] = await db.update(jobs).set(set).where(where).returning(columns);
  if (!row && !opts.from) throw new NotFound('job', id);
  return row;
}

export interface JobQuery {
  state?: JobState;
  kind?: JobKind;
  collectionId?: string;
  cursor?: string;
  limit: number;
}

/** Newest first. */
export async function listJobs(db: Db, q: JobQuery): Promise<Page<Job>> {
  const limit = checkLimit(q.limit);
  const where: SQL[] = [];
  if (q.state) where.push(eq(jobs.state, q.state));
  if (q.kind) where.push(eq(jobs.kind, q.kind));
  if (q.collectionId) {
    if (!isUuid(q.collectionId)) return { items: [], nextCursor: null };
    where.push(eq(jobs.collectionId, q.collectionId));
  }
  if (q.cursor) where.push(afterKeyset(jobs.createdAt, jobs.id, decodeCursor(q.cursor, false), 'desc'));
  const rows = await db
    .select({ ...columns, cursorAt: keysetAt(jobs.createdAt) })
    .from(jobs)
    .where(and(...where))
    .orderBy(desc(jobs.createdAt), desc(jobs.id))
    .limit(limit + 1);
  return toPage(rows, limit, ({ cursorAt: _, ...job }) => job);
}

/**
 * Marks unfinished jobs lost: the named ones, or those not updated since `updatedBefore` (a queue
 * that no longer knows them, a worker that died). Returns the ids it marked.
 */
export async function markJobsLost(db: Db, p: { ids?: string[]; updatedBefore?: Date; reason: string }): Promise<string[]> {
  const where: SQL[] = [inArray(jobs.state, ['queued', 'running'])];
  if (p.ids) where.push(inArray(jobs.id, p.ids));
  if (p.updatedBefore) where.push(lt(jobs.updatedAt, p.updatedBefore));
  if (!p.ids && !p.updatedBefore) throw new RangeError('markJobsLost: name the jobs or give updatedBefore');
  if (p.ids?.length === 0) return [];
  const rows = await db
    .update(jobs)
    .set({ state: 'lost', error: p.reason, finishedAt: sql`now()`, updatedAt: sql`now()` })
    .where(and(...where))
    .returning({ id: jobs.id });
  return rows.map((r) => r.id);
}

/** Job records by kind and state (metrics). */
export async function countJobsByState(db: Db): Promise<{ kind: string; state: string; n: number }[]> {
  return db.select({ kind: jobs.kind, state: jobs.state, n: count() }).from(jobs).groupBy(jobs.kind, jobs.state);
}
