/**
 * Helper for the Python trainer: reads a JSON array of captions, writes a JSON array of the
 * canonical scene key of each (null where the caption does not parse), using the generator's own
 * parser and key. Usage: npx tsx models/mira_blip/scene_keys.ts in.json out.json
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseCaption } from '../../src/scenes/captions.ts';
import { sceneKey } from '../../src/scenes/scene.ts';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: scene_keys.ts in.json out.json');
  process.exit(2);
}
const captions = JSON.parse(readFileSync(input, 'utf8')) as string[];
const keys = captions.map((c) => {
  const scene = parseCaption(c);
  return scene ? sceneKey(scene) : null;
});
writeFileSync(output, JSON.stringify(keys));
