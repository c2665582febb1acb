"""Build BLIP tokenizer.json files (Hugging Face tokenizers format) without the tokenizers package.

BLIP uses bert-base-uncased plus two added special tokens: [DEC] (decoder BOS) at 30522 and [ENC]
(ITM first token) at 30523. Three sources:

  python -m mira_blip.tokenizers bert   --src tokenizer.json|vocab.txt --out tokenizer.json
  python -m mira_blip.tokenizers words  --src words.txt --out tokenizer.json   # Mira's own small vocab
  python -m mira_blip.tokenizers parity --out tokenizer.json                   # 30524-entry stand-in for blip-parity
"""
from __future__ import annotations

import argparse
import json
import string
from pathlib import Path

SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
BLIP_ADDED = ['[DEC]', '[ENC]']

# bert-base-uncased ids of the words in blip-parity's inputs.json and BLIP's demo caption, so the
# parity bundle's tokenizer agrees with the fixtures on those words.
PARITY_WORDS = {
    1010: ',', 1012: '.', 1037: 'a', 1996: 'the', 1997: 'of', 1998: 'and', 1999: 'in', 2003: 'is',
    2006: 'on', 2007: 'with', 2014: 'her', 2304: 'black', 2417: 'red', 2450: 'woman', 3509: 'beach',
    3564: 'sitting', 3861: 'picture', 3899: 'dog', 4418: 'circle',
}


def _added(token: str, tid: int) -> dict:
    return {'id': tid, 'content': token, 'single_word': False, 'lstrip': False, 'rstrip': False, 'normalized': False, 'special': True}


def tokenizer_json(vocab: list[str], added: list[str]) -> dict:
    """A BERT-uncased WordPiece tokenizer.json. `vocab` is the WordPiece vocabulary in id order;
    `added` are special tokens appended after it (ids len(vocab), len(vocab)+1, ...)."""
    index = {tok: i for i, tok in enumerate(vocab)}
    if len(index) != len(vocab):
        raise ValueError('duplicate tokens in the vocabulary')
    missing = [t for t in SPECIALS if t not in index]
    if missing:
        raise ValueError(f'vocabulary lacks {missing}')
    ids = {t: i for t, i in index.items() if t in SPECIALS}
    extra = {t: len(vocab) + i for i, t in enumerate(added) if t not in index}
    ids.update(extra)
    ids.update({t: index[t] for t in added if t in index})
    tok = lambda t: {'SpecialToken': {'id': t, 'type_id': 0}}  # noqa: E731
    return {
        'version': '1.0',
        'truncation': None,
        'padding': None,
        'added_tokens': [_added(t, i) for t, i in sorted(ids.items(), key=lambda kv: kv[1])],
        'normalizer': {'type': 'BertNormalizer', 'clean_text': True, 'handle_chinese_chars': True, 'strip_accents': None, 'lowercase': True},
        'pre_tokenizer': {'type': 'BertPreTokenizer'},
        'post_processor': {
            'type': 'TemplateProcessing',
            'single': [tok('[CLS]'), {'Sequence': {'id': 'A', 'type_id': 0}}, tok('[SEP]')],
            'pair': [tok('[CLS]'), {'Sequence': {'id': 'A', 'type_id': 0}}, tok('[SEP]'), {'Sequence': {'id': 'B', 'type_id': 1}}, {'SpecialToken': {'id': '[SEP]', 'type_id': 1}}],
            'special_tokens': {t: {'id': t, 'ids': [ids[t]], 'tokens': [t]} for t in ('[CLS]', '[SEP]')},
        },
        'decoder': {'type': 'WordPiece', 'prefix': '##', 'cleanup': True},
        'model': {'type': 'WordPiece', 'unk_token': '[UNK]', 'continuing_subword_prefix': '##', 'max_input_chars_per_word': 100, 'vocab': index},
    }


def from_bert(src: str | Path) -> dict:
    """bert-base-uncased tokenizer.json or vocab.txt -> BLIP's tokenizer ([DEC] 30522, [ENC] 30523)."""
    p = Path(src)
    if p.suffix == '.json':
        tj = json.loads(p.read_text(encoding='utf-8'))
        vocab_map = tj['model']['vocab']
        vocab = [t for t, _ in sorted(vocab_map.items(), key=lambda kv: kv[1])]
        if [vocab_map[t] for t in vocab] != list(range(len(vocab))):
            raise ValueError(f'{src}: vocabulary ids are not 0..{len(vocab) - 1}')
    else:
        vocab = p.read_text(encoding='utf-8').split('\n')
        if vocab and vocab[-1] == '':
            vocab.pop()
    return tokenizer_json(vocab, BLIP_ADDED)


def from_words(words: list[str], add_chars: bool = True) -> dict:
    """Mira's small vocabulary: [PAD]=0 [UNK] [CLS] [SEP] [MASK], the words (lowercase; '##x' for
    continuations), then [DEC], [ENC]. add_chars appends single characters and their '##' forms so
    unseen words split into letters instead of becoming [UNK]."""
    vocab = list(SPECIALS)
    seen = set(vocab)
    chars = list(string.ascii_lowercase + string.digits + string.punctuation) if add_chars else []
    for w in [w.strip().lower() for w in words] + chars + ['##' + c for c in chars if c.isalnum()]:
        if w and w not in seen:
            seen.add(w)
            vocab.append(w)
    return tokenizer_json(vocab, BLIP_ADDED)


def parity_tokenizer() -> dict:
    """A 30524-token BERT-shaped tokenizer for the random-weight blip-parity models: BERT's special
    ids, a few real words at their bert-base-uncased ids, [unusedN] elsewhere, [DEC] 30522, [ENC] 30523."""
    vocab: list[str] = []
    unused = 0
    fixed = {0: '[PAD]', 100: '[UNK]', 101: '[CLS]', 102: '[SEP]', 103: '[MASK]', **PARITY_WORDS}
    for i in range(30522):
        if i in fixed:
            vocab.append(fixed[i])
        else:
            vocab.append(f'[unused{unused}]')
            unused += 1
    return tokenizer_json(vocab, BLIP_ADDED)


def special_ids(tj: dict) -> dict[str, int]:
    """Ids of BLIP's special tokens in a tokenizer.json (model vocab or added tokens)."""
    ids = dict(tj['model']['vocab'])
    ids.update({t['content']: t['id'] for t in tj.get('added_tokens', [])})
    names = {'pad': '[PAD]', 'cls': '[CLS]', 'eos': '[SEP]', 'bos': '[DEC]', 'enc': '[ENC]'}
    missing = [tok for tok in names.values() if tok not in ids]
    if missing:
        raise ValueError(f'tokenizer lacks {missing}')
    return {k: ids[tok] for k, tok in names.items()}


def vocab_size(tj: dict) -> int:
    ids = list(tj['model']['vocab'].values()) + [t['id'] for t in tj.get('added_tokens', [])]
    return max(ids) + 1


def write(tj: dict, out: str | Path) -> None:
    Path(out).write_text(json.dumps(tj, ensure_ascii=False), encoding='utf-8')


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('kind', choices=['bert', 'words', 'parity'])
    ap.add_argument('--src', help='bert: tokenizer.json or vocab.txt; words: one word per line')
    ap.add_argument('--out', required=True)
    ap.add_argument('--no-chars', action='store_true', help='words: do not add single characters')
    a = ap.parse_args(argv)
    if a.kind == 'bert':
        tj = from_bert(a.src)
    elif a.kind == 'words':
        tj = from_words(Path(a.src).read_text(encoding='utf-8').split('\n'), add_chars=not a.no_chars)
    else:
        tj = parity_tokenizer()
    write(tj, a.out)
    print(f'{a.out}: {vocab_size(tj)} tokens, special ids {special_ids(tj)}')


if __name__ == '__main__':
    main()
