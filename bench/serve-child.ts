/** `mira serve` as a child process for benchmarks: loopback, its port read back, its RSS read from /proc. */
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from './common.ts';

export interface ServeChild {
  url: string;
  pid: number;
  /** Resident memory now (VmRSS), in bytes. */
  rss(): Promise<number>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts the server on 127.0.0.1 with `env` over this process's, and resolves once /readyz is 200. */
export async function startServeChild(env: Record<string, string>, workDir: string, readyMs = 300_000): Promise<ServeChild> {
  const portFile = join(workDir, 'serve.port');
  await rm(portFile, { force: true });
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'serve', '--host', '127.0.0.1', '--port', '0', '--port-file', portFile], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + String(d)).slice(-8000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + readyMs;
  let url: string | undefined;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`mira serve exited (${child.exitCode}):\n${stderr}`);
    const port = Number((await readFile(portFile, 'utf8').catch(() => '')).trim());
    if (port) {
      url = `http://127.0.0.1:${port}`;
      if ((await fetch(`${url}/readyz`).catch(() => undefined))?.ok) break;
    }
    await sleep(100);
  }
  if (!url || Date.now() >= deadline) {
    child.kill('SIGKILL');
    throw new Error(`mira serve was not ready within ${readyMs} ms:\n${stderr}`);
  }
  return {
    url,
    pid: child.pid!,
    async rss() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      const kb = /^VmRSS:\s+(\d+) kB/m.exec(status);
      if (!kb) throw new Error(`no VmRSS for pid ${child.pid}`);
      return Number(kb[1]) * 1024;
    },
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
