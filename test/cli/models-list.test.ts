import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runMira } from '../support/mira-process.ts';

/** `mira models list` in embedded mode: a fresh data folder registers the configured model (the tiny bundle in tests) and lists it as active. */
describe('mira models list', () => {
  const dirs: string[] = [];
  afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('lists the registered models, the active one marked, and as JSON', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mira-models-list-'));
    dirs.push(dir);
    const env = { MIRA_DATA_DIR: dir };
    const text = await runMira(['models', 'list'], env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^\* tiny-blip@1 {2}blip {2}16-d {2}decoder,itm,text,vision$/m);
    const json = await runMira(['models', 'list', '--json'], env);
    expect(json.code, json.stderr).toBe(0);
    const { items } = JSON.parse(json.stdout) as { items: { id: string; active: boolean; family: string }[] };
    expect(items.map((m) => [m.id, m.active, m.family])).toEqual([['tiny-blip@1', true, 'blip']]);
  });

  it('refuses a stray argument in one line with exit 2', async () => {
    const r = await runMira(['models', 'list', 'extra'], {});
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('mira models: unexpected argument "extra"');
  });
});
