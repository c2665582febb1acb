import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Smoke test of the fine-tuning entry point (models/mira_blip/finetune.py): a tiny random bundle,
// three steps, a new bundle version and report.json; then each bad-input exit path (code 2).
const modelsDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../models');
const python = process.env.MIRA_PYTHON ?? '/usr/bin/python3';
const probe = spawnSync(python, ['-c', 'import torch, numpy, PIL'], { encoding: 'utf8' });
const skipReason = probe.status === 0 ? '' : ` (skipped: ${python} lacks torch/numpy/PIL; apt-get install python3-torch python3-numpy python3-pil)`;

describe('mira_blip.finetune', () => {
  it.skipIf(probe.status !== 0)(`fine-tunes a tiny bundle and reports exit codes${skipReason}`, () => {
    const r = spawnSync(python, ['-m', 'mira_blip.test_finetune'], { cwd: modelsDir, encoding: 'utf8', timeout: 240_000 });
    expect(r.stderr.slice(-2000) + r.stdout.slice(-2000)).toContain('finetune smoke test: ok');
    expect(r.status).toBe(0);
  }, 250_000);
});
