import type { Snapshot } from './changes.ts';

/**
 * The highest change number below which nothing can still appear: the index's `lastApplied`.
 *
 * Labels and deleted_seq come from a sequence when a row is written, not when it commits, so a
 * reader can see label 11 while label 10 is still in an open transaction. Advancing past 11 at
 * once would lose 10 for good. So each scan is remembered with its snapshot, and its high mark
 * becomes safe only once every transaction that could hold a lower number has ended:
 * - those already running at the scan had xids below its snapshot's xmax;
 * - one that had taken a number but not yet an xid (the instant between nextval and the row
 *   write, inside one statement) gets its xid right after, so before the xmax of any snapshot
 *   taken `graceMs` later.
 * A later snapshot whose xmin is at or above that xmax proves them all finished. Until then, scans
 * start again from the safe mark; re-reading a change is harmless (applying it is idempotent).
 *
 * Writers must take labels inside the statement that writes the row (the column default, or
 * nextval in the UPDATE), never in an earlier statement of a transaction with no xid yet.
 */
export class Horizon {
  private readonly scans: { seen: number; xmax: bigint; at: number }[] = [];

  constructor(
    private safeMark: number,
    /** Read before this process started (the sidecar's `seen`): rows at or below it need no vector. */
    private readonly seenBefore = safeMark,
    private readonly graceMs = 1000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get safe(): number {
    return this.safeMark;
  }

  /** Highest change number read so far (≥ safe). */
  get seen(): number {
    return Math.max(this.seenBefore, this.safeMark, this.scans.at(-1)?.seen ?? 0);
  }

  /** Records a scan that read every change up to `seen` in `snapshot`; returns the new safe mark. */
  observe(snapshot: Snapshot, seen: number): number {
    const at = this.now();
    this.scans.push({ seen: Math.max(seen, this.seen), xmax: snapshot.xmax, at });
    while (this.scans.length > 1) {
      const first = this.scans[0]!;
      const later = this.scans.find((s) => s.at >= first.at + this.graceMs);
      if (!later || snapshot.xmin < later.xmax) break;
      this.safeMark = Math.max(this.safeMark, first.seen);
      this.scans.shift();
    }
    this.thin();
    return this.safeMark;
  }

  /** Keeps the list short while an old transaction holds the mark back. */
  private thin(): void {
    if (this.scans.length <= 64) return;
    // Dropping a scan only delays promotion: a later one is a stricter witness.
    const kept = this.scans.filter((_, i) => i === 0 || i === this.scans.length - 1 || i % 2 === 0);
    this.scans.splice(0, this.scans.length, ...kept);
  }
}
