import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Runtime } from '../../src/inference/runtime.ts';
import { isInferenceError } from '../../src/inference/errors.ts';
import { bundleCopy } from './helpers.ts';

/** Opens a broken bundle and returns the one-line error it gives. */
async function openError(edit: (m: Record<string, any>) => void, mutateDir?: (dir: string) => Promise<void>): Promise<string> {
  const b = await bundleCopy(edit);
  try {
    await mutateDir?.(b.dir);
    await Runtime.open(b.dir, { threads: 1 });
    throw new Error('the bundle opened');
  } catch (err) {
    expect(isInferenceError(err, 'bundle_invalid'), String(err)).toBe(true);
    const msg = (err as Error).message;
    expect(msg.includes('\n'), msg).toBe(false);
    return msg;
  } finally {
    await b.cleanup();
  }
}

describe('bundle validation', () => {
  it('names the manifest field that breaks the schema', async () => {
    const msg = await openError((m) => (m.preprocess.resize = 'stretch'));
    expect(msg).toMatch(/manifest\.json: preprocess\.resize/);
  });

  it('refuses a blip bundle without its decoder', async () => {
    const msg = await openError((m) => delete m.graphs.decoder);
    expect(msg).toMatch(/graphs\.decoder/);
  });

  it('names a missing graph file', async () => {
    const msg = await openError(() => {}, (dir) => rm(join(dir, 'itm.onnx')));
    expect(msg).toMatch(/itm\.onnx: missing/);
  });

  it('names a graph file that is not ONNX', async () => {
    const msg = await openError(() => {}, (dir) => writeFile(join(dir, 'text.onnx'), 'not a graph'));
    expect(msg).toMatch(/text\.onnx: not a loadable ONNX graph/);
  });

  it('names an input the graph does not have', async () => {
    const msg = await openError((m) => (m.graphs.text.inputs.inputIds = 'ids'));
    expect(msg).toMatch(/text\.onnx: expected input "ids"/);
  });

  it('names an output the graph does not have', async () => {
    const msg = await openError((m) => (m.graphs.vision.outputs.imageFeat = 'pooled'));
    expect(msg).toMatch(/vision\.onnx: expected output "pooled"/);
  });

  it('refuses an embedding dimension that disagrees with the graph', async () => {
    const msg = await openError((m) => (m.embedDim = 17));
    expect(msg).toMatch(/vision\.onnx: output "image_feat" has shape \[batch, 16\], expected \[.*, 17\]/);
  });

  it('refuses image token shapes that disagree with the graph', async () => {
    const msg = await openError((m) => (m.imageTokens.count = 5));
    expect(msg).toMatch(/the image tokens have 408 values, the manifest says 5 × 24/);
  });

  it('names an unreadable tokenizer', async () => {
    const msg = await openError(() => {}, (dir) => writeFile(join(dir, 'tokenizer.json'), '{ nope'));
    expect(msg).toMatch(/tokenizer\.json: cannot read the tokenizer/);
  });

  it('refuses special-token ids beyond the vocabulary', async () => {
    const msg = await openError((m) => (m.tokenizer.specialTokens.enc = 999));
    expect(msg).toMatch(/special token enc = 999 is not in the vocabulary/);
  });

  it('names a missing manifest', async () => {
    const msg = await openError(() => {}, (dir) => rm(join(dir, 'manifest.json')));
    expect(msg).toMatch(/manifest\.json: missing/);
  });
});
