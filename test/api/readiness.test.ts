import { afterAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/server.ts';
import { modes, testContext, type TestContext } from '../support/context.ts';

describe.each(modes)('readiness (%s mode)', (mode) => {
  let t: TestContext | undefined;
  let server: RunningServer | undefined;
  afterAll(async () => {
    await server?.close();
    await t?.stop();
  });

  it('/readyz is 503 until the models and indexes are loaded, then 200; /healthz is 200 throughout', async () => {
    t = await testContext(mode);
    server = await startServer(t.ctx, { host: '127.0.0.1', port: 0 });
    const before = await fetch(`${server.url}/readyz`);
    expect(before.status, await before.clone().text()).toBe(503);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    await t.ctx.warm();
    const after = await fetch(`${server.url}/readyz`);
    expect(after.status, await after.clone().text()).toBe(200);
  });
});
