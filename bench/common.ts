import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** The default bundle, or the largest test bundle until the default exists. */
export function defaultBundle(): string {
  const def = resolve(ROOT, 'models/default');
  return existsSync(resolve(def, 'manifest.json')) ? def : resolve(ROOT, 'test/fixtures/tiny-blip');
}

export function benchArgs<T extends Record<string, { type: 'string' | 'boolean'; default?: string | boolean }>>(extra: T) {
  const { values } = parseArgs({
    options: { json: { type: 'string' }, bundle: { type: 'string' }, seconds: { type: 'string', default: '5' }, ...extra },
    strict: true,
  });
  return values as unknown as { json?: string; bundle?: string; seconds: string } & { [K in keyof T]: T[K]['type'] extends 'boolean' ? boolean : string };
}

export async function writeJson(file: string | undefined, figures: unknown): Promise<void> {
  if (!file) return;
  await mkdir(dirname(resolve(file)), { recursive: true });
  await writeFile(file, JSON.stringify(figures, null, 2) + '\n');
  console.log(`figures written to ${file}`);
}

/** Runs `fn` repeatedly for `seconds` and returns completed units per second. */
export async function rate(seconds: number, fn: () => Promise<number>): Promise<number> {
  const start = performance.now();
  let units = 0;
  while (performance.now() - start < seconds * 1000) units += await fn();
  return units / ((performance.now() - start) / 1000);
}

/** Max event-loop delay over a window, from Node's own histogram. */
export function lagMonitor() {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  return {
    stop(): { maxMs: number; p99Ms: number } {
      h.disable();
      return { maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6 };
    },
  };
}

export const fmt = (x: number, digits = 1) => x.toFixed(digits);
