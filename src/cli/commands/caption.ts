import { readFile } from 'node:fs/promises';
import { loadEnv, runtimeOptions } from '../../config.ts';
import { CAPTION_METHODS, Runtime } from '../../inference/runtime.ts';
import { intFlag, oneOf, parse, UsageError, type Command } from '../command.ts';

export const caption: Command = {
  summary: 'caption an image file with the model',
  help: `usage: mira caption FILE [--method greedy|beam|beam-itm|nucleus] [--beams N] [--max-length N] [--bundle DIR] [--json]

examples:
  mira caption photo.jpg
  mira caption photo.jpg --method beam --beams 5 --json
  mira caption photo.jpg --method beam-itm     (the best of 5 beams by the ITM head)`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      method: { type: 'string', default: 'beam' },
      beams: { type: 'string' },
      'max-length': { type: 'string' },
      bundle: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    const file = positionals[0];
    if (!file) throw new UsageError('missing FILE');
    const method = oneOf('--method', values.method, CAPTION_METHODS);
    const bytes = await readFile(file).catch(() => {
      throw new UsageError(`${file}: cannot read the file`);
    });
    const env = loadEnv();
    const rt = await Runtime.open(values.bundle ?? env.MIRA_MODEL_DIR, runtimeOptions(env));
    try {
      const c = await rt.caption(bytes, {
        method,
        ...(values.beams ? { numBeams: intFlag(values.beams, 'beams', 3) } : {}),
        ...(values['max-length'] ? { maxLength: intFlag(values['max-length'], 'max-length', 20) } : {}),
      }).catch((err: Error) => {
        throw Object.assign(new Error(`${file}: ${err.message}`), { code: (err as { code?: string }).code });
      });
      console.log(values.json ? JSON.stringify({ file, caption: c.text, model: rt.id }) : c.text);
    } finally {
      await rt.close();
    }
  },
};
