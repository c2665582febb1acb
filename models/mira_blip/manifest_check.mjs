// Validates a bundle's manifest.json against the runtime's own zod schema (src/inference/manifest.ts).
// usage: node --import tsx models/mira_blip/manifest_check.mjs BUNDLE/manifest.json
import { readFileSync } from 'node:fs';
import { manifestSchema } from '../../src/inference/manifest.ts';

const file = process.argv[2];
const res = manifestSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
if (res.success) {
  console.log(`${file}: valid (${res.data.family} ${res.data.name}@${res.data.version})`);
} else {
  for (const issue of res.error.issues) console.error(`${file}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  process.exit(1);
}
