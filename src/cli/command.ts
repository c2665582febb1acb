import { parseArgs, type ParseArgsConfig } from 'node:util';

export interface Command {
  summary: string;
  help: string;
  /** Returns the exit code (0 when omitted). */
  run(argv: string[]): Promise<number | void>;
}

/** Bad flags or arguments: printed as one line, exit code 2. */
export class UsageError extends Error {}

/** node:util parseArgs with its errors turned into one-line usage errors. */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = true) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!);
  }
}

export function intFlag(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${flag} must be a positive integer, got "${value}"`);
  return n;
}

/** `value` if it is one of `allowed`, else a usage error naming the flag and the choices. */
export function oneOf<const T extends readonly string[]>(flag: string, value: string, allowed: T): T[number] {
  if (!allowed.includes(value)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value;
}

/** The exit codes every command keeps to (shown by `mira --help` and in the README). */
export const EXIT_CODES_HELP = `exit codes:
  0    ok
  1    failure: an image refused or failed, a job failed, the server or the database unreachable
  2    bad usage or bad input: one line on stderr naming the flag, file or field; nothing changed
  130  interrupted (Ctrl-C) before the work was done: what was stored stays, running it again goes on`;

/** Exit code of a command stopped by Ctrl-C (or SIGTERM) before it finished its work: 128 + SIGINT. */
export const EXIT_INTERRUPTED = 130;

/**
 * An AbortSignal that aborts on the first Ctrl-C or SIGTERM, so a long command can stop taking
 * work, close its store and exit 130; a second signal exits at once. `release()` removes the
 * handlers (before a server installs its own).
 */
export function interruptSignal(onInterrupt?: () => void): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const handler = () => {
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED);
    onInterrupt?.();
    controller.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    release() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
