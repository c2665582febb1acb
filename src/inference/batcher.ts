export interface BatcherOptions {
  /** Largest batch sent to a graph. */
  maxBatch: number;
  /** How long the first queued item waits for company while another batch is running. */
  maxWaitMs: number;
  /** Batches in flight at once; usually the number of worker threads. */
  maxInFlight: number;
}

export interface BatchEvent {
  size: number;
  /** Milliseconds the oldest item of the batch waited in the queue. */
  queueWaitMs: number;
}

interface Pending<I, O> {
  item: I;
  enqueued: number;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

/**
 * Coalesces concurrent calls for one graph into batches. A batch leaves when it is full, when the
 * oldest item has waited maxWaitMs, or (when every worker is busy) as soon as one frees up, so the
 * queue that builds while the pool is busy becomes the next batch.
 */
export class DynamicBatcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private inFlight = 0;
  private cancelTimer: (() => void) | undefined;

  constructor(
    private readonly runBatch: (items: I[]) => Promise<O[]>,
    private readonly opts: BatcherOptions,
    private readonly onBatch?: (e: BatchEvent) => void,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, enqueued: performance.now(), resolve, reject });
      this.schedule();
    });
  }

  submitAll(items: I[]): Promise<O[]> {
    return Promise.all(items.map((i) => this.submit(i)));
  }

  private schedule(): void {
    if (this.inFlight >= this.opts.maxInFlight) return; // a finishing batch will flush
    if (this.queue.length >= this.opts.maxBatch) {
      this.flush();
    } else if (!this.cancelTimer && this.queue.length > 0) {
      // With every worker idle there is nobody to wait for: go once this tick's calls are queued.
      // With some busy, give the batch up to maxWaitMs to fill.
      if (this.inFlight === 0) {
        const h = setImmediate(() => this.flush());
        this.cancelTimer = () => clearImmediate(h);
      } else {
        const h = setTimeout(() => this.flush(), this.opts.maxWaitMs);
        this.cancelTimer = () => clearTimeout(h);
      }
    }
  }

  private flush(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    if (this.queue.length === 0 || this.inFlight >= this.opts.maxInFlight) return;
    const batch = this.queue.splice(0, this.opts.maxBatch);
    this.inFlight++;
    this.onBatch?.({ size: batch.length, queueWaitMs: performance.now() - batch[0]!.enqueued });
    this.runBatch(batch.map((p) => p.item))
      .then((outs) => {
        if (outs.length !== batch.length) throw new Error(`batch returned ${outs.length} results for ${batch.length} items`);
        batch.forEach((p, i) => p.resolve(outs[i]!));
      })
      .catch((err) => batch.forEach((p) => p.reject(err)))
      .finally(() => {
        this.inFlight--;
        // Whatever queued while the workers were busy goes now, without waiting again.
        if (this.queue.length > 0) this.flush();
      });
    if (this.queue.length > 0) this.schedule();
  }
}
