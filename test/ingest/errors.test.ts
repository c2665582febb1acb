import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InferenceError, inferenceErrorCodes } from '../../src/inference/errors.ts';
import { classifyError, IngestError, ingestErrorCodes } from '../../src/ingest/errors.ts';
import { REPO } from '../support/env.ts';

/** Rows of the outcomes table in src/ingest/README.md: code, status, retryable. */
function documentedOutcomes(): Array<{ code: string; status: number; retryable: boolean }> {
  const readme = readFileSync(join(REPO, 'src/ingest/README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Outcomes'), readme.indexOf('## URL fetching'));
  return section
    .split('\n')
    .map((l) => /^\|.*\| `([a-z_]+)` \| (\d{3}) \| (yes|no) \|$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ code: m[1]!, status: Number(m[2]), retryable: m[3] === 'yes' }));
}

describe('classifyError', () => {
  it('agrees with the outcomes table in src/ingest/README.md, which lists every input code', () => {
    const rows = documentedOutcomes();
    const documented = new Set(rows.map((r) => r.code));
    for (const code of [...ingestErrorCodes, 'image_empty', 'image_unsupported', 'image_corrupt', 'image_too_large', 'image_too_many_bytes']) {
      expect(documented.has(code), `${code} is in the README table`).toBe(true);
    }
    for (const row of rows) {
      const isIngest = (ingestErrorCodes as readonly string[]).includes(row.code);
      let err: Error;
      if (row.code === 'fetch_status') err = new IngestError('fetch_status', 'x', { upstreamStatus: row.retryable ? 503 : 404 });
      else if (isIngest) err = new IngestError(row.code as (typeof ingestErrorCodes)[number], 'x');
      else err = new InferenceError(row.code as (typeof inferenceErrorCodes)[number], 'x');
      expect(classifyError(err), row.code).toMatchObject({ code: row.code, status: row.status, retryable: row.retryable });
    }
  });

  it('retries 5xx, 408 and 429 from a remote, not other statuses', () => {
    const r = (s: number) => classifyError(new IngestError('fetch_status', 'x', { upstreamStatus: s })).retryable;
    expect([500, 502, 503, 504, 408, 429].map(r)).toEqual([true, true, true, true, true, true]);
    expect([400, 401, 403, 404, 410, 451].map(r)).toEqual([false, false, false, false, false, false]);
  });

  it('maps inference errors, also after they crossed a worker boundary as plain objects', () => {
    expect(classifyError({ name: 'InferenceError', code: 'worker_crashed', message: 'gone' })).toEqual({ code: 'worker_crashed', status: 503, message: 'gone', retryable: true });
    expect(classifyError(new InferenceError('image_unsupported', 'nope'))).toMatchObject({ status: 415, retryable: false });
  });

  it('hides unknown errors: internal, 500, retryable, no detail', () => {
    expect(classifyError(new Error('connect ECONNREFUSED 10.0.0.5:5432 password=hunter2'))).toEqual({ code: 'internal', status: 500, message: 'Internal error.', retryable: true });
    expect(classifyError('a string')).toMatchObject({ code: 'internal' });
  });

  it('keeps messages on one line and carries the manifest line', () => {
    const e = new IngestError('manifest_invalid', 'Manifest line 7:\n  not valid JSON.', { line: 7 });
    expect(e.message).toBe('Manifest line 7: not valid JSON.');
    expect(e.toJSON()).toEqual({ code: 'manifest_invalid', message: 'Manifest line 7: not valid JSON.', line: 7 });
  });
});
