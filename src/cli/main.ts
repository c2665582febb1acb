#!/usr/bin/env node
/**
 * The `mira` command. Exit codes: 0 success, 1 failure, 2 bad usage or bad input (one line naming
 * the flag, file or field).
 */
import { UsageError, type Command } from './command.ts';
import { caption } from './commands/caption.ts';
import { demo } from './commands/demo.ts';
import { ingest } from './commands/ingest.ts';
import { keys } from './commands/keys.ts';
import { migrate } from './commands/migrate.ts';
import { models } from './commands/models.ts';
import { search } from './commands/search.ts';
import { serve } from './commands/serve.ts';
import { worker } from './commands/worker.ts';

const commands: Record<string, Command> = { serve, worker, demo, ingest, search, caption, models, keys, migrate };

function help(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return [
    'usage: mira <command> [options]',
    '',
    'commands:',
    ...lines,
    '',
    'examples:',
    '  mira demo                          embed sample scenes, search them by text, caption them',
    '  mira ingest ./photos --collection holidays',
    '  mira search "a dog on a beach" --collection holidays --k 5',
    '  mira caption photo.jpg --method beam',
    '  mira models import ./clip-onnx --out models/clip-b32',
  '  mira models activate mira-blip-scenes@2   re-extract the collections on other versions, then switch',
    '',
    "Run 'mira <command> --help' for a command's options. Exit codes: 0 ok, 1 failure, 2 bad usage or input.",
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    console.error(`mira: unknown command "${name}" (try mira --help)`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.help);
    return 0;
  }
  try {
    return (await command.run(rest)) ?? 0;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`mira ${name}: ${err.message}`);
      return 2;
    }
    const e = err as { code?: string; message?: string };
    console.error(`mira ${name}: ${e.message ?? String(err)}`);
    return e.code && /^(image_|bundle_)/.test(e.code) ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
