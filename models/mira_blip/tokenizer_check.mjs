// Loads tokenizer.json files with @huggingface/tokenizers (what the runtime uses) and prints, per
// file, the encoding of each text and the special ids it resolves. Used by tokenizers/export checks.
// usage: node models/mira_blip/tokenizer_check.mjs TOKENIZER.json [TEXT ...]  -> JSON on stdout
import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';

const [file, ...texts] = process.argv.slice(2);
const tok = new Tokenizer(JSON.parse(readFileSync(file, 'utf8')), {});
const out = { file, vocabSize: tok.get_vocab(true).size, encodings: {}, ids: {} };
for (const t of texts.length ? texts : ['a red circle']) {
  const e = tok.encode(t);
  out.encodings[t] = { ids: e.ids, tokens: e.tokens, decoded: tok.decode(e.ids, { skip_special_tokens: true }) };
}
for (const s of ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '[DEC]', '[ENC]']) out.ids[s] = tok.token_to_id(s) ?? null;
console.log(JSON.stringify(out));
