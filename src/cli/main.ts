#!/usr/bin/env node
/** The `mira` command: one entry, a subcommand per file in commands/. Exit codes: EXIT_CODES_HELP. */
import { EXIT_CODES_HELP, UsageError, type Command } from './command.ts';
import { caption } from './commands/caption.ts';
import { collections } from './commands/collections.ts';
import { demo } from './commands/demo.ts';
import { extract } from './commands/extract.ts';
import { finetune } from './commands/finetune.ts';
import { gc } from './commands/gc.ts';
import { ingest } from './commands/ingest.ts';
import { jobs } from './commands/jobs.ts';
import { keys } from './commands/keys.ts';
import { migrate } from './commands/migrate.ts';
import { models } from './commands/models.ts';
import { search } from './commands/search.ts';
import { serve } from './commands/serve.ts';
import { worker } from './commands/worker.ts';

const commands: Record<string, Command> = { serve, worker, demo, ingest, search, caption, models, collections, keys, migrate, finetune, extract, jobs, gc };

function help(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return [
    'usage: mira <command> [options]',
    '',
    'commands:',
    ...lines,
    '',
    'examples:',
    '  mira demo                          sample scenes ingested into collection demo, then the API and web UI',
    '  mira ingest ./photos --collection holidays',
    '  mira search "a dog on a beach" --collection holidays --k 5',
    '  mira caption photo.jpg --method beam',
    '  mira finetune --collection holidays --wait   fine-tune its model on its captions',
    '  mira extract --collection holidays --out ./features   embeddings.npy + items.jsonl, for Python',
    '  mira jobs watch extract_0b6f…      follow a job with a progress bar; mira jobs list, mira jobs cancel ID',
    '  mira models import ./clip-onnx --out models/clip-b32',
    '  mira models activate mira-blip-scenes@4   re-extract the collections on other versions, then switch',
    '  mira collections rollback holidays          search it by its previous model version again',
    '',
    "Run 'mira <command> --help' for a command's options and examples. Commands that print results take",
    '--json: one JSON document on stdout; progress bars and messages go to stderr.',
    '',
    EXIT_CODES_HELP,
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    // Asked for: stdout, exit 0. No command at all is a usage error: stderr, exit 2.
    if (name) console.log(help());
    else console.error(help());
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    console.error(`mira: unknown command "${name}" (try mira --help)`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`${command.help}\n\n${EXIT_CODES_HELP}`);
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
