import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { MiraApiError, MiraClient } from '../../sdk/src/index.ts';
import { createKey, type Scope } from '../../src/api/keys.ts';
import type { ApiContext } from '../../src/app.ts';
import type { Db } from '../../src/db/client.ts';
import type { Logger } from '../../src/log.ts';
import { registerModel } from '../../src/db/queries/models.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { modes, testContext, type TestContext } from '../support/context.ts';

/** Service mode (Postgres, BullMQ on Redis) when DATABASE_URL and REDIS_URL are set, else embedded (PGlite). */
export const mode: 'service' | 'embedded' = modes.includes('service') ? 'service' : 'embedded';

export interface LiveServer {
  url: string;
  ctx: ApiContext;
  db: Db;
  /** A client with an unlimited admin key. */
  admin: MiraClient;
  /** A client with a new key of these scopes (and collections). */
  client(scopes: Scope[], collections?: string[] | null): Promise<MiraClient>;
}

export const unique = (prefix: string): string => `${prefix}-${randomBytes(5).toString('hex')}`;

/**
 * Starts a real server on 127.0.0.1, port 0, over a real context (the tiny BLIP bundle, a private
 * data folder, queue prefix and, in service mode, a worker) for one test file. `env` may be a
 * function, for settings made in beforeAll (a private database); `opts.log` captures the logs.
 */
export function useServer(
  env: Record<string, string> | (() => Promise<Record<string, string>>) = {},
  opts: { log?: Logger } = {},
): (() => LiveServer) & { mode: typeof mode } {
  let live: LiveServer | undefined;
  let server: RunningServer | undefined;
  let test: TestContext | undefined;
  beforeAll(async () => {
    test = await testContext(mode, typeof env === 'function' ? await env() : env, opts);
    const ctx: ApiContext = test.ctx;
    server = await startServer(ctx, { host: '127.0.0.1', port: 0 });
    await ctx.warm(); // as `mira serve` does once it listens
    const url = server.url;
    const client = async (scopes: Scope[], collections: string[] | null = null) => {
      const { key } = await createKey(ctx.db, { name: unique('test-key'), scopes, collections });
      return new MiraClient({ baseUrl: url, apiKey: key });
    };
    live = { url, ctx, db: ctx.db, admin: await client(['admin']), client };
  });
  afterAll(async () => {
    await server?.close();
    await test?.stop();
  });
  const get = () => {
    if (!live) throw new Error('server not started');
    return live;
  };
  return Object.assign(get, { mode });
}

/** A model row only this test file uses (no bundle on disk: the routes here never run it). */
export async function ownModel(db: Db, opts: { name?: string; version?: string; graphs?: string[] } = {}) {
  const name = opts.name ?? unique('test-model');
  const graphs = Object.fromEntries((opts.graphs ?? ['vision', 'text']).map((g) => [g, { file: `${g}.onnx` }]));
  const { model } = await registerModel(db, {
    name,
    version: opts.version ?? '1',
    family: 'clip',
    path: `/nowhere/${name}`,
    checksum: randomBytes(16).toString('hex'),
    embedDim: 4,
    manifest: { graphs },
  });
  return model;
}

/** Runs the call and returns the MiraApiError it rejects with (failing when it resolves). */
export async function problemOf(call: Promise<unknown>): Promise<MiraApiError> {
  try {
    const value = await call;
    throw new Error(`expected an error, got ${JSON.stringify(value)}`);
  } catch (err) {
    if (err instanceof MiraApiError) return err;
    throw err;
  }
}
