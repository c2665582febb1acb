import { readdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../src/config.ts';
import { EXIT_CODES_HELP } from '../../src/cli/command.ts';
import { runMira } from '../support/mira-process.ts';

/**
 * The common surface of `mira`, as a user meets it in a child process: one entry whose --help lists
 * every command file in src/cli/commands, a --help with examples and the exit codes for each, and
 * usage errors as one line on stderr with exit 2.
 */
const commandNames = (await readdir(resolve(ROOT, 'src/cli/commands'))).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3)).sort();

/** Commands that print no results, so have nothing for --json: the worker logs, migrate says it is done. */
const NO_RESULTS = new Set(['worker', 'migrate']);

const shown = (r: { code: number | null; stdout: string; stderr: string }) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

describe('mira --help', () => {
  it('lists every command in src/cli/commands with a summary, examples and the exit codes', async () => {
    const r = await runMira(['--help'], {});
    expect(r.code, shown(r)).toBe(0);
    const section = r.stdout.split('commands:\n')[1]?.split('\n\n')[0] ?? '';
    const listed = section.split('\n').map((l) => l.trim().split(/\s+/)[0]).sort();
    expect(listed, shown(r)).toEqual(commandNames);
    expect(r.stdout, shown(r)).toContain('examples:\n  mira demo');
    for (const code of ['0 ', '1 ', '2 ', '130 ']) expect(r.stdout, shown(r)).toMatch(new RegExp(`\\n  ${code} +\\S`));
  });

  it('prints the usage on stderr and exits 2 without a command', async () => {
    const r = await runMira([], {});
    expect(r.code, shown(r)).toBe(2);
    expect(r.stdout, shown(r)).toBe('');
    expect(r.stderr, shown(r)).toMatch(/^usage: mira <command>/);
  });

  it('names an unknown command in one line and exits 2', async () => {
    const r = await runMira(['frobnicate', '--json'], {});
    expect(r.code, shown(r)).toBe(2);
    expect(r.stderr.trim().split('\n'), shown(r)).toEqual(['mira: unknown command "frobnicate" (try mira --help)']);
  });

  it.each(commandNames)('mira %s --help shows its usage, examples, the exit codes, and --json where it prints results', async (name) => {
    const r = await runMira([name, '--help'], {});
    expect(r.code, shown(r)).toBe(0);
    expect(r.stdout, shown(r)).toMatch(new RegExp(`^usage: mira ${name}\\b`));
    expect(r.stdout, shown(r)).toMatch(/\nexamples?:\n {2}([A-Z_]+=\S+ )*mira /);
    expect(r.stdout, shown(r)).toContain(EXIT_CODES_HELP);
    if (!NO_RESULTS.has(name)) expect(r.stdout, shown(r)).toContain('--json');
  });
});
