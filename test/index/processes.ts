import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from '../../src/config.ts';

const CHILD = resolve(ROOT, 'test/index/child.ts');

export interface ChildProcessHandle {
  /** The next JSON line the child prints. */
  next(timeoutMs: number): Promise<Record<string, unknown>>;
  search(vector: ArrayLike<number>, k: number): Promise<{ hits: { label: number; score: number }[] }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  stop(): Promise<void>;
}

/** Starts test/index/child.ts under tsx, a real second Node process, with `job` as its orders. */
export function startChild(job: Record<string, unknown>): ChildProcessHandle {
  // `node --import tsx` rather than the tsx binary: the binary runs the script in a grandchild,
  // and the tests need the signal the script's own process died of.
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, MIRA_CHILD: JSON.stringify(job) }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += String(d)));
  const queue: Record<string, unknown>[] = [];
  const waiters: ((msg: Record<string, unknown>) => void)[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line);
    } catch {
      return; // not ours (a library printing)
    }
    const w = waiters.shift();
    if (w) w(msg);
    else queue.push(msg);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((done) =>
    child.on('exit', (code, signal) => done({ code, signal, stderr })),
  );
  let id = 0;
  const next = (timeoutMs: number) =>
    new Promise<Record<string, unknown>>((done, fail) => {
      const queued = queue.shift();
      if (queued) return done(queued);
      const timer = setTimeout(() => fail(new Error(`child sent nothing for ${timeoutMs} ms; stderr:\n${stderr}`)), timeoutMs);
      void exited.then((e) => fail(new Error(`child exited (${e.code ?? e.signal}); stderr:\n${e.stderr}`)));
      waiters.push((msg) => {
        clearTimeout(timer);
        done(msg);
      });
    });
  return {
    next,
    exited,
    async search(vector, k) {
      child.stdin.write(JSON.stringify({ id: ++id, vector: Array.from(vector), k }) + '\n');
      return (await next(10_000)) as unknown as { hits: { label: number; score: number }[] };
    },
    async stop() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
