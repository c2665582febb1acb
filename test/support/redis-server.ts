import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';

/** Why a test that needs its own Redis cannot run here, or undefined when it can. */
export const noRedisServer: string | undefined =
  spawnSync('redis-server', ['--version']).status === 0 && spawnSync('redis-cli', ['--version']).status === 0
    ? undefined
    : 'redis-server and redis-cli are not on PATH';

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise((resolve) => s.close(resolve));
  return port;
}

export interface PrivateRedis {
  url: string;
  port: number;
  running(): boolean;
  /** Starts redis-server on the port (again, after stop) and resolves once it accepts connections. */
  start(): Promise<void>;
  /** `redis-cli shutdown nosave`, resolved once the server process has exited. */
  stop(): Promise<void>;
}

/** A Redis of the test's own on 127.0.0.1, without persistence, that the test may shut down. */
export async function privateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let proc: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    running: () => proc !== undefined,
    async start() {
      if (proc) return;
      const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
      proc = p;
      exited = new Promise((resolve) => p.once('exit', () => resolve()));
      let out = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`redis-server on ${port} did not start:\n${out}`)), 10_000);
        p.stdout!.on('data', (d) => {
          out += String(d);
          if (out.includes('Ready to accept connections')) {
            clearTimeout(timer);
            resolve();
          }
        });
        p.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`redis-server on ${port} exited (${code}):\n${out}`));
        });
      });
    },
    async stop() {
      if (!proc) return;
      await promisify(execFile)('redis-cli', ['-p', String(port), 'shutdown', 'nosave']).catch(() => proc?.kill('SIGKILL'));
      await exited;
      proc = undefined;
    },
  };
}
