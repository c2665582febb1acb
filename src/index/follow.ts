import type { VectorIndex } from './vector-index.ts';

/**
 * Keeps a replica's index current: one sync per interval (never two at once), and a save once
 * changes have been waiting `saveEveryMs`. A failed poll is logged and retried on the next tick.
 */
export class Follower {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private active = false;

  constructor(private readonly index: VectorIndex) {}

  start(intervalMs: number, saveEveryMs: number): void {
    if (this.active) return;
    this.active = true;
    const tick = async () => {
      try {
        await this.index.sync();
        if (this.index.unsavedForMs >= saveEveryMs) await this.index.save();
      } catch (err) {
        this.index.log.warn({ err }, 'index follow: poll failed, retrying');
      }
      if (this.active) this.timer = setTimeout(() => (this.running = tick()), intervalMs);
    };
    this.running = tick();
  }

  async stop(): Promise<void> {
    this.active = false;
    clearTimeout(this.timer);
    await this.running;
  }
}
