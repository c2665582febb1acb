import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { MiraClient } from '../../sdk/src/index.ts';
import { createJob } from '../../src/db/queries/jobs.ts';
import { startServer } from '../../src/server.ts';
import { ownModel, problemOf, unique, useServer } from './server.ts';

const server = useServer();

/** Two collections, A and B, and a read key limited to A. */
async function twoCollections() {
  const { admin, db, client } = server();
  const model = await ownModel(db);
  const create = (name: string) => MiraClient.data(admin.api.POST('/v1/collections', { body: { name: unique(name), embedder: model.id } }));
  const [a, b] = [await create('a'), await create('b')];
  const jobB = (await createJob(db, { id: unique('job-b'), kind: 'ingest', collectionId: b.id, payload: {} })).job;
  return { a, b, jobB, onlyA: await client(['read'], [a.id]) };
}

describe('authentication', () => {
  it('a request without a key is 401 with WWW-Authenticate', async () => {
    const anonymous = new MiraClient({ baseUrl: server().url });
    const err = await problemOf(anonymous.api.GET('/v1/collections'));
    expect(err.status, JSON.stringify(err.problem)).toBe(401);
    expect(err.code).toBe('unauthorized');
    expect(err.headers.get('www-authenticate')).toBe('Bearer realm="mira"');
  });

  it('malformed and made-up keys are 401', async () => {
    for (const apiKey of ['nonsense', `mira_000000000000_${'A'.repeat(43)}`, 'mira_zz_zz']) {
      const err = await problemOf(new MiraClient({ baseUrl: server().url, apiKey }).api.GET('/v1/collections'));
      expect(err.status, apiKey).toBe(401);
    }
  });

  it('a revoked key stops working at once', async () => {
    const { admin, url } = server();
    const created = await MiraClient.data(admin.api.POST('/v1/keys', { body: { name: unique('k'), scopes: ['read'] } }));
    const client = new MiraClient({ baseUrl: url, apiKey: created.key });
    await MiraClient.data(client.api.GET('/v1/collections'));
    await admin.api.DELETE('/v1/keys/{id}', { params: { path: { id: created.apiKey.id } } });
    const err = await problemOf(client.api.GET('/v1/collections'));
    expect(err.status, JSON.stringify(err.problem)).toBe(401);
  });
});

describe('scopes', () => {
  it('a read key can read but cannot write or administer (403)', async () => {
    const { client, db } = server();
    const reader = await client(['read']);
    await MiraClient.data(reader.api.GET('/v1/jobs', { params: { query: {} } }));
    const job = (await createJob(db, { id: unique('job'), kind: 'ingest', payload: {} })).job;
    const cancel = await problemOf(reader.api.POST('/v1/jobs/{id}/cancel', { params: { path: { id: job.id } } }));
    expect(cancel.status, JSON.stringify(cancel.problem)).toBe(403);
    expect(cancel.code).toBe('forbidden');
    const create = await problemOf(reader.api.POST('/v1/collections', { body: { name: unique('c') } }));
    expect(create.status, JSON.stringify(create.problem)).toBe(403);
  });

  it('a write key cannot create keys, and a limited admin key cannot either', async () => {
    const { client } = server();
    const writer = await client(['write']);
    const err = await problemOf(writer.api.POST('/v1/keys', { body: { name: unique('k'), scopes: ['admin'] } }));
    expect(err.status, JSON.stringify(err.problem)).toBe(403);
    const { a } = await twoCollections();
    const limitedAdmin = await client(['admin'], [a.id]);
    const escalate = await problemOf(limitedAdmin.api.POST('/v1/keys', { body: { name: unique('k'), scopes: ['admin'] } }));
    expect(escalate.status, JSON.stringify(escalate.problem)).toBe(403);
  });
});

describe('a key limited to collection A', () => {
  it('does not see collection B: get is the same 404 as for a collection that does not exist', async () => {
    const { a, b, onlyA } = await twoCollections();
    await MiraClient.data(onlyA.api.GET('/v1/collections/{id}', { params: { path: { id: a.id } } }));
    const hidden = await problemOf(onlyA.api.GET('/v1/collections/{id}', { params: { path: { id: b.id } } }));
    const absent = await problemOf(onlyA.api.GET('/v1/collections/{id}', { params: { path: { id: randomUUID() } } }));
    expect(hidden.status, JSON.stringify(hidden.problem)).toBe(404);
    expect({ ...hidden.problem, detail: '', instance: '', requestId: '' }).toEqual({ ...absent.problem, detail: '', instance: '', requestId: '' });
  });

  it('lists only A', async () => {
    const { a, b, onlyA } = await twoCollections();
    const { items } = await MiraClient.data(onlyA.api.GET('/v1/collections'));
    const ids = items.map((c) => c.id);
    expect(ids).toContain(a.id);
    expect(ids).not.toContain(b.id);
  });

  it("does not see B's jobs by id or in a list", async () => {
    const { b, jobB, onlyA } = await twoCollections();
    const byId = await problemOf(onlyA.getJob(jobB.id));
    expect(byId.status, JSON.stringify(byId.problem)).toBe(404);
    const listed = await problemOf(onlyA.api.GET('/v1/jobs', { params: { query: { collectionId: b.id } } }));
    expect(listed.status, JSON.stringify(listed.problem)).toBe(404);
    const own = await MiraClient.data(onlyA.api.GET('/v1/jobs', { params: { query: {} } }));
    expect(own.items.map((j) => j.id)).not.toContain(jobB.id);
  });
});

describe('no-auth mode', () => {
  it('is refused on a non-loopback address and in service mode', async () => {
    const { ctx } = server();
    const off = { ...ctx, env: { ...ctx.env, MIRA_AUTH: 'off' as const } };
    await expect(startServer(off, { host: '0.0.0.0', port: 0 })).rejects.toThrow(/MIRA_AUTH=off is allowed only in embedded mode bound to loopback/);
    await expect(startServer({ ...off, mode: 'service' }, { host: '127.0.0.1', port: 0 })).rejects.toThrow(/only in embedded mode/);
  });

  it.skipIf(server.mode === 'service')('works on loopback in embedded mode, but refuses foreign origins and host names', async () => {
    const { ctx } = server();
    const warnings: string[] = [];
    const log = Object.assign(Object.create(ctx.log), { warn: (_: unknown, msg: string) => warnings.push(msg) });
    const running = await startServer({ ...ctx, log, env: { ...ctx.env, MIRA_AUTH: 'off' } }, { host: '127.0.0.1', port: 0 });
    try {
      expect(warnings.join('\n')).toMatch(/authentication is OFF/);
      const anonymous = new MiraClient({ baseUrl: running.url });
      await MiraClient.data(anonymous.api.GET('/v1/collections'));
      const foreign = await fetch(`${running.url}/v1/collections`, { headers: { origin: 'https://evil.example' } });
      expect(foreign.status).toBe(403);
      // fetch will not send a foreign Host header; node:http will, as a DNS-rebound browser would.
      const rebound = await new Promise<number>((resolve, reject) => {
        const req = request(`${running.url}/v1/collections`, { headers: { host: 'evil.example' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject).end();
      });
      expect(rebound).toBe(403);
    } finally {
      await running.close();
    }
  });
});
