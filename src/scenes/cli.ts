/**
 * npm run data:scenes -- --seed S --n N --out DIR [--size PX] [--style default|outlined|noisy]
 *                        [--contrast F] [--concurrency K]
 * Split seeds: 1 = train, 2 = validation, 3 = test, 1000+ = demo / ad-hoc.
 * Exit codes: 0 ok, 1 generation failed, 2 bad or missing flag (one-line message naming the flag).
 */
import { pathToFileURL } from 'node:url';
import { generateScenes, type GenerateOptions } from './generate.ts';
import { STYLES, type Style } from './render.ts';

const USAGE =
  'usage: npm run data:scenes -- --seed S --n N --out DIR [--size PX (64)] [--style default|outlined|noisy]' +
  ' [--contrast F (0.4)] [--concurrency K (8)]   split seeds: 1 train, 2 validation, 3 test, 1000+ demo';

export class UsageError extends Error {}

const FLAGS = new Set(['seed', 'n', 'out', 'size', 'style', 'contrast', 'concurrency']);

function integer(flag: string, raw: string, min: number, max: number): number {
  const v = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new UsageError(`--${flag} must be an integer in ${min}..${max} (got "${raw}")`);
  }
  return v;
}

export function parseArgs(argv: string[]): GenerateOptions | 'help' {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') return 'help';
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument "${arg}" (flags look like --seed 1)`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    if (!FLAGS.has(name)) throw new UsageError(`unknown flag --${name}`);
    if (values.has(name)) throw new UsageError(`--${name} given twice`);
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`);
      i++;
    }
    if (value === '') throw new UsageError(`--${name} needs a value`);
    values.set(name, value);
  }
  for (const required of ['seed', 'n', 'out']) {
    if (!values.has(required)) throw new UsageError(`missing required flag --${required}`);
  }
  const style = values.get('style') ?? 'default';
  if (!STYLES.includes(style as Style)) throw new UsageError(`--style must be one of ${STYLES.join('|')} (got "${style}")`);
  const contrastRaw = values.get('contrast');
  let contrastFraction: number | undefined;
  if (contrastRaw !== undefined) {
    contrastFraction = /^\d*\.?\d+$/.test(contrastRaw) ? Number(contrastRaw) : NaN;
    if (!(contrastFraction >= 0 && contrastFraction <= 1)) {
      throw new UsageError(`--contrast must be a number in 0..1 (got "${contrastRaw}")`);
    }
  }
  const concurrencyRaw = values.get('concurrency');
  return {
    seed: integer('seed', values.get('seed') as string, 0, Number.MAX_SAFE_INTEGER),
    n: integer('n', values.get('n') as string, 1, 10_000_000),
    outDir: values.get('out') as string,
    size: integer('size', values.get('size') ?? '64', 8, 4096),
    style: style as Style,
    ...(contrastFraction !== undefined ? { contrastFraction } : {}),
    ...(concurrencyRaw !== undefined ? { concurrency: integer('concurrency', concurrencyRaw, 1, 256) } : {}),
  };
}

export async function main(argv: string[]): Promise<number> {
  let opts: GenerateOptions | 'help';
  try {
    opts = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`data:scenes: ${err.message}\n`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const started = performance.now();
  let nextReport = 0.1;
  try {
    const summary = await generateScenes({
      ...opts,
      onProgress: (done, total) => {
        if (done / total + 1e-9 < nextReport && done !== total) return;
        while (nextReport <= done / total + 1e-9) nextReport += 0.1;
        const secs = ((performance.now() - started) / 1000).toFixed(1);
        process.stderr.write(`data:scenes: ${done}/${total} (${Math.round((100 * done) / total)}%) ${secs}s\n`);
      },
    });
    const c = summary.counts;
    process.stdout.write(
      `wrote ${summary.n} scenes (${summary.size}px, ${summary.style}) to ${summary.outDir} in ${(summary.elapsedMs / 1000).toFixed(1)}s: ` +
        `objects 1/2/3 = ${c.objects[1]}/${c.objects[2]}/${c.objects[3]}, contrast groups ${c.contrastGroups} ` +
        `(${c.contrastScenes} scenes), unique keys ${c.uniqueKeys}, vocabulary ${summary.vocabulary.length} words\n`,
    );
    return 0;
  } catch (err) {
    process.stderr.write(`data:scenes: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
