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
