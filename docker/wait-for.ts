/**
 * `node --import tsx docker/wait-for.ts postgres redis`: waits until each named service the
 * environment configures (DATABASE_URL, REDIS_URL) answers a real query, or exits 1 after
 * MIRA_WAIT_SECONDS (default 60) with one line naming it and the last error. An unset URL is not
 * waited for (embedded mode). Messages never show credentials: host, port and database only.
 */
import { Redis } from 'ioredis';
import postgres from 'postgres';

type Service = 'postgres' | 'redis';

const seconds = Number(process.env.MIRA_WAIT_SECONDS || 60);
if (!Number.isFinite(seconds) || seconds < 0) fail(`MIRA_WAIT_SECONDS must be a number of seconds, got "${process.env.MIRA_WAIT_SECONDS}"`, 2);

/** host:port/path of a URL, without user or password. */
function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || (u.protocol.startsWith('postgres') ? 5432 : 6379)}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return fail(`${url.startsWith('redis') ? 'REDIS_URL' : 'DATABASE_URL'} is not a URL`, 2);
  }
}

function fail(message: string, code = 1): never {
  console.error(`entrypoint: ${message}`);
  process.exit(code);
}

async function ping(service: Service, url: string, timeoutS: number): Promise<void> {
  if (service === 'postgres') {
    const sql = postgres(url, { max: 1, connect_timeout: timeoutS, onnotice: () => {} });
    try {
      await sql`select 1`;
    } finally {
      await sql.end({ timeout: 1 });
    }
    return;
  }
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutS * 1000 });
  let cause: Error | undefined;
  redis.on('error', (err: Error) => (cause ??= err)); // connect() rejects with "Connection is closed"; this says why
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw cause ?? err;
  } finally {
    redis.disconnect();
  }
}

async function waitFor(service: Service, url: string): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  let said = false;
  for (;;) {
    const left = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
    try {
      await ping(service, url, Math.min(left, 5));
      if (said) console.error(`entrypoint: ${service} at ${where(url)} answers`);
      return;
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0] || String(err);
      if (Date.now() + 500 > deadline) fail(`${service} at ${where(url)} did not answer within ${seconds} s (MIRA_WAIT_SECONDS): ${reason}`);
      if (!said) console.error(`entrypoint: waiting up to ${seconds} s for ${service} at ${where(url)} (${reason})`);
      said = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

const urls: Record<Service, string | undefined> = { postgres: process.env.DATABASE_URL || undefined, redis: process.env.REDIS_URL || undefined };
for (const name of process.argv.slice(2)) {
  if (name !== 'postgres' && name !== 'redis') fail(`wait-for: unknown service "${name}" (postgres | redis)`, 2);
  const url = urls[name];
  if (url) await waitFor(name, url);
}
