/** What the data layer refuses. The API maps `code` to a problem+json status. */
export type DbErrorCode = 'not_found' | 'conflict' | 'invalid_cursor';

export class DbError extends Error {
  constructor(
    readonly code: DbErrorCode,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The row a write depends on does not exist (or is deleted). */
export class NotFound extends DbError {
  constructor(
    readonly resource: string,
    readonly key: string,
  ) {
    super('not_found', `${resource} ${key} not found`);
  }
}

/** The write contradicts a row that exists: a taken name, a changed checksum under an old version. */
export class Conflict extends DbError {
  constructor(
    readonly resource: string,
    message: string,
  ) {
    super('conflict', message);
  }
}

/** A page cursor that this layer did not produce. */
export class InvalidCursor extends DbError {
  constructor() {
    super('invalid_cursor', 'the cursor is not one this server returned');
  }
}

/**
 * The SQLSTATE of a failed query, from postgres.js or PGlite, through drizzle's wrapper
 * (`DrizzleQueryError` keeps the driver error as `cause`).
 */
export function sqlState(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

export const UNIQUE_VIOLATION = '23505';
export const FOREIGN_KEY_VIOLATION = '23503';
