import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadEnv } from '../../src/config.ts';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** The parity fixtures that CI always has beside the checkout. */
export const PARITY_DIR = resolve(REPO, '../shared/reference/blip-parity');
export const hasParity = existsSync(resolve(PARITY_DIR, 'expected.json'));
export const noParityReason = `reference fixtures not found at ${PARITY_DIR}`;

/** The configured Python, when it can import torch; tests that need it skip with the reason otherwise. */
export const python = loadEnv().MIRA_PYTHON;
export const hasTorch = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
export const noTorchReason = `${python} cannot import torch (apt-get install -y python3-torch python3-numpy python3-pil libopenblas0-pthread, or set MIRA_PYTHON)`;
