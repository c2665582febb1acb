import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stderr (stdout stays free for CLI output). `MIRA_LOG_LEVEL` sets the level. */
export function createLogger(name: string, level = process.env.MIRA_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
}

/** The two levels job code logs at (pino's Logger is one; so is any test double). */
export interface LineLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** A logger whose every line carries `fields` (a job's id, kind and attempt); a line's own fields win. */
export function withFields(log: LineLogger, fields: Record<string, unknown>): LineLogger {
  return {
    info: (obj, msg) => log.info({ ...fields, ...obj }, msg),
    warn: (obj, msg) => log.warn({ ...fields, ...obj }, msg),
  };
}
