import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ROOT } from '../../src/config.ts';
import { TINY_BLIP } from '../inference/helpers.ts';
import { eventually } from './context.ts';

const MAIN = resolve(ROOT, 'src/cli/main.ts');

/**
 * The environment of a `mira` child: this process's, with no Postgres or Redis (embedded) unless
 * `env` names them, the tiny BLIP bundle, one inference thread and quiet logs.
 */
export function childEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: '',
    REDIS_URL: '',
    MIRA_API_URL: '',
    MIRA_API_KEY: '',
    MIRA_MODEL_DIR: TINY_BLIP,
    MIRA_INFERENCE_THREADS: '1',
    MIRA_LOG_LEVEL: 'warn',
    ...env,
  };
}

export interface MiraProcess {
  child: ChildProcess;
  output(): { stdout: string; stderr: string };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** How a `mira` child is started: `node --import tsx src/cli/main.ts`, or another launcher (docker/entrypoint.sh ROLE). */
export const MIRA_COMMAND: readonly string[] = [process.execPath, '--import', 'tsx', MAIN];

/** `node --import tsx src/cli/main.ts ARGS` (or `launcher ARGS`) as a real child process. */
export function spawnMira(args: string[], env: Record<string, string | undefined>, launcher: readonly string[] = MIRA_COMMAND): MiraProcess {
  const [cmd, ...pre] = launcher;
  const child = spawn(cmd!, [...pre, ...args], { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += String(d)));
  child.stderr!.on('data', (d) => (stderr += String(d)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, signal) => done({ code, signal })));
  return {
    child,
    exited,
    output: () => ({ stdout, stderr }),
    async stop(graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs a `mira` command (or `launcher ARGS`) to its end. */
export async function runMira(args: string[], env: Record<string, string | undefined>, timeoutMs = 120_000, launcher: readonly string[] = MIRA_COMMAND) {
  const p = spawnMira(args, env, launcher);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const { code, signal } = await p.exited;
  clearTimeout(timer);
  return { code, signal, ...p.output() };
}

export interface ServeProcess extends MiraProcess {
  url: string;
}

/**
 * `mira serve --port 0 --port-file F` on loopback (`launcher`: another way to start it, such as
 * docker/entrypoint.sh api); resolves once /readyz answers 200 (models and indexes loaded). A data
 * folder of its own is made when `env` names none, and removed at stop.
 */
export async function startServe(env: Record<string, string | undefined>, readyMs = 120_000, launcher: readonly string[] = [...MIRA_COMMAND, 'serve']): Promise<ServeProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'mira-serve-'));
  const portFile = join(dir, 'port');
  const p = spawnMira(['--host', '127.0.0.1', '--port', '0', '--port-file', portFile], { MIRA_DATA_DIR: join(dir, 'data'), ...env }, launcher);
  const died = p.exited.then((e) => {
    throw new Error(`mira serve exited (${e.code ?? e.signal}):\n${p.output().stderr}`);
  });
  died.catch(() => {});
  const started = (async () => {
    const port = await eventually('mira serve to write its port', async () => Number((await readFile(portFile, 'utf8').catch(() => '')).trim()) || undefined, readyMs);
    const url = `http://127.0.0.1:${port}`;
    await eventually('mira serve to be ready', async () => ((await fetch(`${url}/readyz`)).ok ? true : undefined), readyMs);
    return url;
  })();
  let url: string;
  try {
    url = await Promise.race([started, died]);
  } catch (err) {
    await p.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    ...p,
    url,
    async stop(graceMs) {
      await p.stop(graceMs);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
