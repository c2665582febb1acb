/** A one-line progress bar on stderr with rate and ETA; plain lines when stderr is not a terminal. */
export function progressBar(label: string, total: number) {
  const start = performance.now();
  const tty = process.stderr.isTTY;
  let lastPrinted = -1;
  return {
    update(done: number): void {
      const secs = (performance.now() - start) / 1000;
      const rate = done / Math.max(secs, 1e-3);
      const eta = rate > 0 ? (total - done) / rate : 0;
      const pct = Math.floor((100 * done) / total);
      const width = 24;
      const bar = '#'.repeat(Math.round((width * done) / total)).padEnd(width, '.');
      const line = `${label} [${bar}] ${done}/${total} ${rate.toFixed(1)}/s eta ${eta.toFixed(0)}s`;
      if (tty) process.stderr.write(`\r${line}`);
      else if (pct >= lastPrinted + 10 || done === total) {
        process.stderr.write(`${line}\n`);
        lastPrinted = pct;
      }
    },
    done(): void {
      if (tty) process.stderr.write('\n');
    },
  };
}
