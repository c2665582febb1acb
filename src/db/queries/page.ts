import { sql, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { InvalidCursor } from '../errors.ts';

export interface Page<T> {
  items: T[];
  /** Pass back to get the next page; null on the last one. */
  nextCursor: string | null;
}

/** A position in a (created_at, id) ordering; `at` keeps Postgres' microseconds, which a Date would drop. */
interface Keyset {
  at: string;
  id: string;
}

const AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (s: string): boolean => UUID.test(s);

/** The column as microsecond UTC text, for building a cursor from a row. */
export const keysetAt = (col: PgColumn): SQL<string> => sql<string>`to_char(${col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export function encodeCursor(k: Keyset): string {
  return Buffer.from(JSON.stringify([k.at, k.id])).toString('base64url');
}

export function decodeCursor(cursor: string, idIsUuid: boolean): Keyset {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursor();
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw new InvalidCursor();
  const [at, id] = parsed as unknown[];
  if (typeof at !== 'string' || !AT.test(at) || typeof id !== 'string' || id.length > 512) throw new InvalidCursor();
  if (idIsUuid && !isUuid(id)) throw new InvalidCursor();
  return { at, id };
}

/** Rows after the cursor in (created, id) order, ascending or descending. */
export function afterKeyset(created: PgColumn, id: PgColumn, k: Keyset, order: 'asc' | 'desc'): SQL {
  const cast = id.getSQLType() === 'uuid' ? sql`::uuid` : sql``;
  return order === 'asc'
    ? sql`(${created}, ${id}) > (${k.at}::timestamptz, ${k.id}${cast})`
    : sql`(${created}, ${id}) < (${k.at}::timestamptz, ${k.id}${cast})`;
}

/** Cuts a `limit + 1` fetch into a page; rows carry `cursorAt` for the keyset. */
export function toPage<R extends { cursorAt: string; id: string }, T>(rows: R[], limit: number, item: (r: R) => T): Page<T> {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  const last = kept[kept.length - 1];
  return { items: kept.map(item), nextCursor: more && last ? encodeCursor({ at: last.cursorAt, id: last.id }) : null };
}

export function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  return limit;
}
