/**
 * README "Deployment" names every environment variable Mira reads, with src/config.ts's default:
 * the schema's keys, plus the few variables read outside it (the CLI's, the logger's, the
 * entrypoint's, compose's). A new variable without a row, or a changed default, fails here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envSchema, ROOT } from '../../src/config.ts';

const readme = readFileSync(resolve(ROOT, 'README.md'), 'utf8');
const start = readme.indexOf('## Deployment\n');
const deployment = readme.slice(start, readme.indexOf('\n## ', start + 1));
/** Table rows of the Deployment section: variable names (first cell) and the whole row. */
const rows = deployment
  .split('\n')
  .filter((l) => l.startsWith('| `'))
  .map((row) => ({ names: [...row.split('|')[1]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!), row }));
const rowOf = (name: string) => rows.find((r) => r.names.includes(name))?.row;

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory() ? files(path, ext) : ext.test(e.name) ? [path] : [];
  });
}

/** Variables read directly (`process.env.X`) outside config.ts, and those the docker files use. */
function readElsewhere(): Map<string, string> {
  const found = new Map<string, string>();
  const scan = (path: string, pattern: RegExp) => {
    for (const m of readFileSync(path, 'utf8').matchAll(pattern)) found.set(m[1]!, relative(ROOT, path));
  };
  for (const f of [...files(resolve(ROOT, 'src'), /\.ts$/), ...files(resolve(ROOT, 'workers'), /\.ts$/), resolve(ROOT, 'docker/wait-for.ts')]) {
    if (!f.endsWith('src/config.ts')) scan(f, /process\.env\.([A-Z][A-Z0-9_]+)/g);
  }
  scan(resolve(ROOT, 'docker/compose.yaml'), /\$\{([A-Z][A-Z0-9_]+)[:}-]/g);
  return found;
}

describe('README Deployment: the environment table', () => {
  it('is there, with rows', () => {
    expect(start, 'README has a "## Deployment" section').toBeGreaterThan(0);
    expect(rows.length).toBeGreaterThan(30);
  });

  it('has a row for every variable in src/config.ts', () => {
    const missing = Object.keys(envSchema.shape).filter((name) => !rowOf(name));
    expect(missing, 'variables in src/config.ts without a README row').toEqual([]);
  });

  it('has a row for every variable read outside src/config.ts', () => {
    const elsewhere = readElsewhere();
    expect([...elsewhere.keys()]).toEqual(expect.arrayContaining(['MIRA_LOG_LEVEL', 'MIRA_WAIT_SECONDS', 'POSTGRES_PASSWORD']));
    const missing = [...elsewhere].filter(([name]) => !rowOf(name)).map(([name, file]) => `${name} (${file})`);
    expect(missing, 'variables read in the code or the docker files without a README row').toEqual([]);
  });

  it("states src/config.ts's default in each variable's row", () => {
    const wrong: string[] = [];
    for (const [name, schema] of Object.entries(envSchema.shape)) {
      const parsed = schema.safeParse(undefined);
      if (!parsed.success || parsed.data === undefined) continue; // optional: the row says what unset means
      const value = parsed.data;
      const expected = value === '' ? 'empty' : typeof value === 'string' && value.startsWith(ROOT) ? relative(ROOT, value) : String(value);
      const row = rowOf(name);
      if (row && !row.includes(expected)) wrong.push(`${name}: expected the default ${expected} in "${row}"`);
    }
    expect(wrong).toEqual([]);
  });
});
