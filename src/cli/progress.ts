/**
 * The one progress bar of the `mira` commands (ingest, demo, jobs watch, ...), always on stderr so
 * stdout stays the command's result. On a terminal it redraws one line (at most every 100 ms); on
 * anything else (a pipe, a CI log) it prints a plain line every 10% and at the end.
 */
export interface ProgressBar {
  /** `total` may change between calls (a job that learns its size as it goes); 0 means unknown. */
  update(done: number, total?: number): void;
  /** Ends the bar: the last line is kept. */
  done(): void;
}

export interface ProgressOptions {
  /** False: a bar that prints nothing (--json, --quiet). */
  enabled?: boolean;
  stream?: NodeJS.WriteStream;
}

const WIDTH = 24;
const REDRAW_MS = 100;

export function progressBar(label: string, total: number, opts: ProgressOptions = {}): ProgressBar {
  if (opts.enabled === false) return { update() {}, done() {} };
  const stream = opts.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  // Rates count from the first update: work done before the bar existed (extraction that ran
  // while images were still being stored) is not work per second since the bar started.
  let base: { done: number; at: number } | undefined;
  let lastTenth = -1;
  let lastDraw = 0;
  let last = { done: 0, total };

  const line = (done: number, total: number): string => {
    base ??= { done, at: performance.now() };
    const secs = (performance.now() - base.at) / 1000;
    const rate = secs > 0.05 ? (done - base.done) / secs : 0;
    const speed = rate > 0 ? `${rate.toFixed(1)}/s` : '-/s';
    if (total <= 0) return `${label} ${done}/? ${speed} ${secs.toFixed(0)}s`;
    const frac = Math.min(1, done / total);
    const eta = done >= total ? '0s' : rate > 0 ? `${((total - done) / rate).toFixed(0)}s` : '?';
    const bar = '#'.repeat(Math.round(WIDTH * frac)).padEnd(WIDTH, '.');
    return `${label} [${bar}] ${done}/${total} ${Math.floor(100 * frac)}% ${speed} eta ${eta}`;
  };

  return {
    update(done, newTotal) {
      if (newTotal !== undefined) total = newTotal;
      last = { done, total };
      const finished = total > 0 && done >= total;
      if (tty) {
        const now = performance.now();
        if (!finished && now - lastDraw < REDRAW_MS) return;
        lastDraw = now;
        stream.write(`\r${line(done, total)}\x1b[K`);
        return;
      }
      const tenth = total > 0 ? Math.floor((10 * done) / total) : lastTenth;
      if (tenth > lastTenth || finished) {
        if (finished && lastTenth === 10) return;
        stream.write(`${line(done, total)}\n`);
        lastTenth = finished ? 10 : tenth;
      }
    },
    done() {
      if (tty) stream.write(`\r${line(last.done, last.total)}\x1b[K\n`);
      else if (lastTenth !== 10 && last.done > 0) stream.write(`${line(last.done, last.total)}\n`);
    },
  };
}
