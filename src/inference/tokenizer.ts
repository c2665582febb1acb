import { readFile } from 'node:fs/promises';
import { Tokenizer } from '@huggingface/tokenizers';
import { InferenceError } from './errors.ts';
import type { Manifest } from './manifest.ts';

/** A padded batch of token ids, row-major [rows, length], ready to become int64 tensors. */
export interface TokenBatch {
  ids: BigInt64Array;
  mask: BigInt64Array;
  rows: number;
  length: number;
}

/**
 * The bundle's tokenizer plus BLIP's special-token rules:
 * - retrieval text starts with [CLS] and ends with [SEP] (the tokenizer's own template);
 * - ITM replaces the first token with [ENC] (`itm.firstToken = enc`);
 * - the decoder prompt starts with [DEC] instead of [CLS] and drops the trailing [SEP].
 */
export class TextTokenizer {
  private constructor(
    private readonly tok: Tokenizer,
    private readonly spec: Manifest['tokenizer'],
    private readonly itmFirst: 'enc' | 'cls',
  ) {}

  static async load(file: string, manifest: Manifest): Promise<TextTokenizer> {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw new InferenceError('bundle_invalid', `${file}: cannot read the tokenizer (${(err as Error).message})`);
    }
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(json as object, {});
      tok.encode('a');
    } catch (err) {
      throw new InferenceError('bundle_invalid', `${file}: not a tokenizer.json that @huggingface/tokenizers can load (${(err as Error).message})`);
    }
    const vocabSize = tok.get_vocab(true).size;
    for (const [name, id] of Object.entries(manifest.tokenizer.specialTokens)) {
      if (id !== undefined && vocabSize > 0 && tok.id_to_token(id) === undefined) {
        throw new InferenceError('bundle_invalid', `${file}: special token ${name} = ${id} is not in the vocabulary (${vocabSize} tokens)`);
      }
    }
    return new TextTokenizer(tok, manifest.tokenizer, manifest.itm?.firstToken ?? 'enc');
  }

  get maxLength(): number {
    return this.spec.maxLength;
  }

  /** Token ids with the tokenizer's special tokens, cut to maxLength while keeping the final EOS. */
  encode(text: string): number[] {
    const ids = this.tok.encode(text).ids;
    if (ids.length <= this.spec.maxLength) return ids;
    const eos = this.spec.specialTokens.eos;
    const cut = ids.slice(0, this.spec.maxLength);
    if (ids[ids.length - 1] === eos) cut[cut.length - 1] = eos;
    return cut;
  }

  /** ITM input: the retrieval encoding with its first token set as the manifest says. */
  encodeForItm(text: string): number[] {
    return this.itmFirstToken(this.encode(text));
  }

  /** Sets the first token of retrieval ids for ITM: [ENC] as BLIP's retrieval does, or [CLS] kept. */
  itmFirstToken(ids: number[]): number[] {
    const enc = this.spec.specialTokens.enc;
    return this.itmFirst === 'enc' && enc !== undefined ? [enc, ...ids.slice(1)] : [...ids];
  }

  /** Decoder prompt: [DEC] replaces [CLS] and the trailing [SEP] is dropped, as BLIP's generate() does. */
  encodePrompt(prompt: string): number[] {
    const { bos, eos } = this.spec.specialTokens;
    if (bos === undefined) throw new InferenceError('bundle_invalid', 'this bundle has no decoder BOS token');
    const ids = this.tok.encode(prompt).ids;
    if (ids[ids.length - 1] === eos) ids.pop();
    ids[0] = bos;
    return ids;
  }

  decode(ids: number[]): string {
    return this.tok.decode(ids, { skip_special_tokens: true }).trim();
  }

  /** Pads rows to a common length: the longest row, or maxLength when the graph needs a fixed length. */
  pad(rows: number[][]): TokenBatch {
    const length = this.spec.padding === 'max' ? this.spec.maxLength : Math.max(...rows.map((r) => r.length));
    return padRows(rows, length, this.spec.specialTokens.pad);
  }
}

export function padRows(rows: number[][], length: number, padId: number): TokenBatch {
  const ids = new BigInt64Array(rows.length * length).fill(BigInt(padId));
  const mask = new BigInt64Array(rows.length * length);
  rows.forEach((row, r) => {
    row.forEach((id, i) => {
      ids[r * length + i] = BigInt(id);
      mask[r * length + i] = 1n;
    });
  });
  return { ids, mask, rows: rows.length, length };
}
