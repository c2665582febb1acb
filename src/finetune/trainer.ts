import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { ROOT } from '../config.ts';

/** Where `python -m mira_blip.finetune` runs (the package lives in models/). */
export const TRAINER_CWD = resolve(ROOT, 'models');

/** What the apt-get line and the variable are, for every "Python is not usable" message. */
export const PYTHON_HINT =
  'install PyTorch, NumPy and Pillow (Debian: `apt-get install -y python3-torch python3-numpy python3-pil libopenblas0-pthread`) ' +
  'and point MIRA_PYTHON at that interpreter (e.g. MIRA_PYTHON=/usr/bin/python3)';

/** One JSON line of the trainer's stdout (`event`: start, eval, step, export, done, error). */
export interface TrainerEvent {
  event: string;
  [field: string]: unknown;
}

export interface TrainerRun {
  /** The exit code; null when a signal ended the process. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why this side stopped it, when it did. */
  stopped?: 'timeout' | 'aborted';
  /** The last `error` event's message, when there was one. */
  error?: string;
  /** The last lines of stderr (a traceback), for the job's error. */
  stderrTail: string;
}

export interface TrainerOptions {
  python: string;
  args: string[];
  timeoutMs: number;
  signal: AbortSignal;
  onEvent(e: TrainerEvent): void;
  cwd?: string;
  /** After SIGTERM, how long the trainer has before SIGKILL. */
  killGraceMs?: number;
}

const TAIL = 4000;

/**
 * Runs `python -m mira_blip.finetune ARGS` as its own process group, hands each JSON line of its
 * stdout to `onEvent`, and stops it (SIGTERM, then SIGKILL) on abort or timeout. Never rejects for
 * the trainer's own failures: the caller reads the exit code; a spawn failure (no such
 * interpreter) rejects.
 */
export function runTrainer(o: TrainerOptions): Promise<TrainerRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(o.python, ['-m', 'mira_blip.finetune', ...o.args], {
      cwd: o.cwd ?? TRAINER_CWD,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    });
    let stderrTail = '';
    let pending = '';
    let error: string | undefined;
    let stopped: TrainerRun['stopped'];
    let killTimer: NodeJS.Timeout | undefined;

    const stop = (why: NonNullable<TrainerRun['stopped']>) => {
      if (stopped || child.exitCode !== null || child.signalCode !== null) return;
      stopped = why;
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), o.killGraceMs ?? 5000);
    };
    const onAbort = () => stop('aborted');
    const timer = setTimeout(() => stop('timeout'), o.timeoutMs);
    o.signal.addEventListener('abort', onAbort, { once: true });
    if (o.signal.aborted) onAbort();

    const line = (text: string) => {
      if (!text.startsWith('{')) return;
      let e: TrainerEvent;
      try {
        e = JSON.parse(text) as TrainerEvent;
      } catch {
        return;
      }
      if (typeof e.event !== 'string') return;
      if (e.event === 'error' && typeof e.message === 'string') error = e.message;
      o.onEvent(e);
    };
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const l of lines) line(l.trim());
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-TAIL);
    });
    const cleanup = () => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      o.signal.removeEventListener('abort', onAbort);
    };
    child.once('error', (err) => {
      cleanup();
      reject(err);
    });
    child.once('close', (code, signal) => {
      cleanup();
      if (pending.trim()) line(pending.trim());
      resolvePromise({ code, signal, ...(stopped ? { stopped } : {}), ...(error ? { error } : {}), stderrTail: stderrTail.trim() });
    });
  });
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // Already gone.
  }
}

/**
 * Whether `python` can import torch, numpy and PIL; the reason when not (a missing interpreter, an
 * import error), with how to install them.
 */
export function probePython(python: string, timeoutMs = 120_000): Promise<string | undefined> {
  return new Promise((done) => {
    const child = spawn(python, ['-c', 'import torch, numpy, PIL'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: timeoutMs });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-2000)));
    child.once('error', (err) => done(`MIRA_PYTHON=${python} cannot be run (${err.message}): ${PYTHON_HINT}`));
    child.once('close', (code, signal) => {
      if (code === 0) return done(undefined);
      const why = stderr.trim().split('\n').at(-1) || (signal ? `killed by ${signal}` : `exit code ${code}`);
      done(`MIRA_PYTHON=${python} cannot import torch, numpy and PIL (${why}): ${PYTHON_HINT}`);
    });
  });
}
