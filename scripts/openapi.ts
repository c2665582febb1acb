/**
 * Writes openapi.yaml from the route definitions. `--check` writes nothing and exits 1 when the
 * committed file differs from what the routes produce (CI runs it before the tests).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { stringify } from 'yaml';
import { apiDocument } from '../src/app.ts';
import { ROOT } from '../src/config.ts';

const FILE = resolve(ROOT, 'openapi.yaml');
const header = '# Generated from the routes in src/api/routes by `npm run openapi`. Do not edit.\n';

const text = header + stringify(apiDocument(), { lineWidth: 0, aliasDuplicateObjects: false });

if (process.argv.includes('--check')) {
  const committed = await readFile(FILE, 'utf8').catch(() => '');
  if (committed !== text) {
    console.error('openapi.yaml is stale: run `npm run openapi` (then `npm run sdk`) and commit the result');
    process.exit(1);
  }
  console.log('openapi.yaml is up to date');
} else {
  await writeFile(FILE, text);
  console.log(`wrote ${FILE}`);
}
