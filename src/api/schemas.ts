import { z } from '@hono/zod-openapi';

/** Page-size cap for every list (the data layer takes any positive limit; the API owns the cap). */
export const MAX_PAGE = 200;
export const DEFAULT_PAGE = 50;

export const Uuid = z.uuid().openapi({ example: '0b6f3c1e-6d8f-4a57-9d38-2f1b7d1d6a10' });

export const IdParam = z.strictObject({
  id: Uuid.openapi({ param: { name: 'id', in: 'path' } }),
});

export const pageQuery = {
  cursor: z
    .string()
    .max(1024)
    .optional()
    .openapi({ param: { name: 'cursor', in: 'query' }, description: 'nextCursor of the previous page' }),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PAGE)
    .default(DEFAULT_PAGE)
    .openapi({ param: { name: 'limit', in: 'query' }, description: `Page size, at most ${MAX_PAGE}` }),
};

export const Timestamp = z.iso.datetime().openapi({ example: '2026-01-31T12:00:00.000Z' });
export const iso = (d: Date): string => d.toISOString();
export const isoOrNull = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** The JSON request body of a route: required, strict schema, one media type. */
export const jsonBody = <T extends z.ZodType>(schema: T, description?: string) => ({
  required: true,
  ...(description ? { description } : {}),
  content: { 'application/json': { schema } },
});

export const jsonContent = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});
