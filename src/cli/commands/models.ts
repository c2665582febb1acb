import { importClip } from '../../inference/import-clip.ts';
import { parse, UsageError, type Command } from '../command.ts';

export const models: Command = {
  summary: 'import published CLIP ONNX models as bundles',
  help: `usage: mira models import DIR [--out DIR] [--json]

Recognizes the open_clip/Immich layout (visual/model.onnx, textual/model.onnx) and the
transformers.js layout (onnx/vision_model.onnx, onnx/text_model.onnx), checks the graphs and
writes manifest.json.

examples:
  mira models import ./ViT-B-32__openai
  mira models import ./clip-vit-base-patch32 --out models/clip-b32`,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub !== 'import') throw new UsageError(`unknown subcommand "${sub ?? ''}" (expected: import)`);
    const { values, positionals } = parse(rest, { out: { type: 'string' }, json: { type: 'boolean', default: false } });
    const dir = positionals[0];
    if (!dir) throw new UsageError('missing DIR');
    const result = await importClip(dir, values.out ? { out: values.out } : {});
    const m = result.manifest;
    if (values.json) console.log(JSON.stringify({ name: m.name, version: m.version, embedDim: m.embedDim, written: result.written }));
    else console.log(`imported ${m.name}@${m.version} (clip, ${m.embedDim}-d) -> ${result.written}`);
  },
};
