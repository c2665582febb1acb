import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The trainer's data path for the default recipe (models/mira_blip/test_data.py): --flip mirrors
// images with their captions, negatives and scene keys (checked with the generator's own parser),
// the sine-cosine position grid of --pos-init sincos, ITM mirror negatives, and the targets of
// --relation-aux (each named object's centre, checked against the generator's layout).
const modelsDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../models');
const python = process.env.MIRA_PYTHON ?? '/usr/bin/python3';
const probe = spawnSync(python, ['-c', 'import torch, numpy, PIL'], { encoding: 'utf8' });
const skipReason = probe.status === 0 ? '' : ` (skipped: ${python} lacks torch/numpy/PIL; apt-get install python3-torch python3-numpy python3-pil)`;

describe('mira_blip training data', () => {
  it.skipIf(probe.status !== 0)(`mirrors images with their captions and scenes; sincos positions; relation and object targets; caption error kinds${skipReason}`, () => {
    const r = spawnSync(python, ['-m', 'mira_blip.test_data'], { cwd: modelsDir, encoding: 'utf8', timeout: 180_000 });
    expect(r.stderr.slice(-2000) + r.stdout.slice(-2000)).toContain('train data test: ok');
    expect(r.status).toBe(0);
  }, 190_000);
});
