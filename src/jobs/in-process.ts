import { withFields } from '../log.ts';
import { backoffDelay } from './execute.ts';
import { dbOf, runRecorded, STOPPED_ON_RECORD } from './records.ts';
import type { EnqueueOptions, JobKind, JobQueue, JobRun, Processor, QueuedJobState } from './types.ts';

interface Task {
  kind: JobKind;
  jobId: string;
  payload: unknown;
  attempt: number;
  abort: AbortController;
}

/**
 * Embedded mode: the same processors, run in this process with each kind's concurrency, retries
 * and backoff. Durability comes from Postgres (PGlite): work that was queued when the process
 * stopped is found again by reconciliation at startup (pending images, unfinished job records).
 */
export class InProcessJobQueue<C> implements JobQueue {
  readonly kind = 'in-process' as const;
  private readonly waiting = new Map<JobKind, Task[]>();
  private readonly active = new Map<string, Task>();
  private readonly running = new Map<JobKind, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly ctx: () => C,
    private readonly table: Map<JobKind, Processor<C, any>>,
    private readonly log: JobRun['log'],
  ) {}

  private known(jobId: string): boolean {
    if (this.active.has(jobId)) return true;
    for (const q of this.waiting.values()) if (q.some((t) => t.jobId === jobId)) return true;
    return false;
  }

  async enqueue(kind: JobKind, payload: unknown, opts: EnqueueOptions): Promise<void> {
    if (this.closed) throw new Error('the job runner is closed');
    if (!this.table.has(kind)) throw new Error(`no processor for job kind ${kind}`);
    if (this.known(opts.jobId)) return;
    const q = this.waiting.get(kind) ?? [];
    q.push({ kind, jobId: opts.jobId, payload, attempt: 1, abort: new AbortController() });
    this.waiting.set(kind, q);
    this.pump(kind);
  }

  async enqueueMany(kind: JobKind, jobs: { payload: unknown; jobId: string }[]): Promise<void> {
    for (const j of jobs) await this.enqueue(kind, j.payload, { jobId: j.jobId });
  }

  async cancel(jobId: string): Promise<boolean> {
    for (const q of this.waiting.values()) {
      const i = q.findIndex((t) => t.jobId === jobId);
      if (i >= 0) {
        q.splice(i, 1);
        return true;
      }
    }
    const task = this.active.get(jobId);
    task?.abort.abort();
    return !!task;
  }

  async state(kind: JobKind, jobId: string): Promise<QueuedJobState> {
    if (this.active.get(jobId)?.kind === kind) return 'active';
    // A task waiting out its retry backoff is in no list: it reads as unknown until it is back.
    return this.waiting.get(kind)?.some((t) => t.jobId === jobId) ? 'waiting' : 'unknown';
  }

  async depths(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const kind of this.table.keys()) out[kind] = (this.waiting.get(kind)?.length ?? 0) + (this.running.get(kind) ?? 0);
    return out;
  }

  /** Resolves when nothing is waiting or running (tests, the demo's progress). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private isIdle(): boolean {
    return this.active.size === 0 && this.timers.size === 0 && [...this.waiting.values()].every((q) => q.length === 0);
  }

  private pump(kind: JobKind): void {
    const proc = this.table.get(kind)!;
    const q = this.waiting.get(kind) ?? [];
    while (!this.closed && q.length > 0 && (this.running.get(kind) ?? 0) < proc.queue.concurrency) {
      const task = q.shift()!;
      this.running.set(kind, (this.running.get(kind) ?? 0) + 1);
      this.active.set(task.jobId, task);
      void this.runTask(proc, task).finally(() => {
        this.running.set(kind, (this.running.get(kind) ?? 1) - 1);
        this.active.delete(task.jobId);
        this.pump(kind);
        if (this.isIdle()) this.idleWaiters.splice(0).forEach((r) => r());
      });
    }
  }

  private async runTask(proc: Processor<C, any>, task: Task): Promise<void> {
    const log = withFields(this.log, { jobId: task.jobId, kind: task.kind, attempt: task.attempt });
    const run: JobRun = { id: task.jobId, attempt: task.attempt, signal: task.abort.signal, progress: async () => {}, log };
    const ctx = this.ctx();
    const db = dbOf(ctx);
    const outcome = await runRecorded(proc, ctx, task.payload, run, db ? { db, stopping: () => this.closed } : undefined);
    if (outcome.status === 'retry' && !this.closed) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        const q = this.waiting.get(task.kind) ?? [];
        q.push({ ...task, attempt: task.attempt + 1 });
        this.waiting.set(task.kind, q);
        this.pump(task.kind);
      }, backoffDelay(proc, task.attempt));
      this.timers.add(timer);
      log.warn({ err: outcome.error.message }, 'job failed, will retry');
    } else if (outcome.status === 'failed') {
      if (STOPPED_ON_RECORD.has(outcome.code)) log.info({ code: outcome.code }, outcome.error.message);
      else log.warn({ code: outcome.code, err: outcome.error.message }, 'job failed');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    // Waiting work is not lost: reconciliation finds it in Postgres at the next start.
    for (const q of this.waiting.values()) q.length = 0;
    for (const task of this.active.values()) task.abort.abort();
    if (this.active.size > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
  }
}
