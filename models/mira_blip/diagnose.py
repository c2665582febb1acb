"""Which confusions a model makes: pairwise accuracy of ITM and ITC by kind of negative caption.

    cd models && /usr/bin/python3 -m mira_blip.diagnose (--bundle DIR | --checkpoint FILE) \\
        [--val ../data/scenes/val] [--n 300] [--json FILE]

For the first caption of each of the first `n` validation images, every caption one swap away
(two colors exchanged, two sizes exchanged, one relation flipped, left/right or above/below: the
phrasing is identical, only the binding differs), one shape word replaced, and one random other image's caption, kept only if
its scene differs (the generator's parser decides). For each kind it prints how often the positive
caption scores above the negative one for the image: with the ITM match logit ([ENC] first) and
with the ITC cosine. 0.5 is chance. This is where re-ranking can gain over ITC (ITM above ITC on a
kind), and what a caption must get right (binding and relations) to parse back to the scene.
Then the cosine between each image's ITC feature and its mirror image's: near 1 means the feature
ignores where objects are, and no relation can be told from it. Last, with --captions, what the
greedy captions of the images get wrong (caption_errors): the first wrong part of each, and which
shapes are written for which.
"""
from __future__ import annotations

import argparse
import itertools
import json
from collections import Counter
import sys
from pathlib import Path

import numpy as np
import torch

from . import tokenizers as toks
from .data import COLOR_WORDS, SIZE_WORDS, SceneSplit, WordVocab, normalize, scene_keys, shape_substitutes, swap_candidates
from .evaluate import encode_images, encode_texts, greedy_captions, itm_scores
from .modeling import BlipForTraining, load_config


def load(a) -> tuple[BlipForTraining, int, int, str]:
    if a.bundle:
        w = Path(a.bundle) / 'weights'
        cfg = load_config(w / 'config.json')
        model = BlipForTraining(cfg)
        model.load_weights_dir(w)
        return model.eval(), cfg.vision.image_size, cfg.text.max_position_embeddings, str(a.bundle)
    from .train import build_model, model_config
    ck = torch.load(a.checkpoint, map_location='cpu')
    args = argparse.Namespace(**ck['state']['args'])
    meta = json.loads((Path(args.train) / 'dataset.json').read_text())
    model = build_model(model_config(args, toks.from_words(meta['vocabulary'])), not args.no_share, 0)
    model.load_state_dict(ck['model'])
    return model.eval(), args.image_size, args.max_len, f'{a.checkpoint} (step {ck["step"]})'


def kind_of(pos: str, neg: str) -> str:
    w, v = pos.split(), neg.split()
    d = next(j for j in range(len(w)) if w[j] != v[j])
    if w[d] in COLOR_WORDS:
        return 'color'
    if w[d] in SIZE_WORDS:
        return 'size'
    return 'left/right' if w[d] in ('left', 'right') else 'above/below'


def caption_errors(generated: list[str | None], truth: list[str]) -> dict:
    """What each generated caption's scene key (None: did not parse) gets wrong against the true
    key: 'ok', 'unparsed', 'count' (another number of objects), 'objects' (the same number, some
    size, color or shape wrong) or 'relations' (the objects right, a relation wrong). Objects are
    matched to the truth in the order that agrees on the most attributes; `attributes` counts the
    wrong ones over all images with the right count, `shapes` each confusion 'true -> written'."""
    kinds, attrs, shapes = Counter(), Counter(), Counter()
    for g, t in zip(generated, truth):
        if g == t:
            kinds['ok'] += 1
            continue
        if g is None:
            kinds['unparsed'] += 1
            continue
        g_names, t_names = g.partition('|')[0], t.partition('|')[0]
        mine, true = [o.split() for o in g_names.split('+')], [o.split() for o in t_names.split('+')]
        if len(mine) != len(true):
            kinds['count'] += 1
            continue
        best = max(itertools.permutations(mine), key=lambda p: sum(a == b for x, y in zip(true, p) for a, b in zip(x, y)))
        for x, y in zip(true, best):
            for name, a, b in zip(('size', 'color', 'shape'), x, y):
                if a != b:
                    attrs[name] += 1
            if x[2] != y[2]:
                shapes[f'{x[2]} -> {y[2]}'] += 1
        kinds['objects' if g_names != t_names else 'relations'] += 1
    return {'images': len(truth), 'kinds': dict(kinds), 'attributes': dict(attrs), 'shapes': dict(shapes.most_common())}


@torch.no_grad()
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument('--bundle', help='a bundle folder with weights/ (e.g. default)')
    src.add_argument('--checkpoint', help="a training checkpoint (runs/<run>/checkpoint.pt)")
    ap.add_argument('--val', default='../data/scenes/val')
    ap.add_argument('--n', type=int, default=300)
    ap.add_argument('--captions', action='store_true', help='also break down what the greedy captions of the n images get wrong')
    ap.add_argument('--json', help='also write the figures here')
    a = ap.parse_args(argv)
    model, size, max_len, what = load(a)
    meta = json.loads((Path(a.val) / 'dataset.json').read_text())
    vocab = WordVocab.from_tokenizer(toks.from_words(meta['vocabulary']))
    split = SceneSplit(a.val, size, vocab)
    n = min(a.n, len(split))
    emb, img_feat = encode_images(model, split.pixels[:n])
    rng = np.random.default_rng(0)
    rows = []  # (positive caption, negative caption, image, kind)
    for i in range(n):
        c = split.cap_text[int(split.img_cap_off[i])]
        rows += [(c, s, i, kind_of(c, s)) for s in swap_candidates(c)]
        rows += [(c, s, i, 'shape') for s in shape_substitutes(c, rng)]
        rows.append((c, split.cap_text[int(split.img_cap_off[int(rng.integers(n))])], i, 'random'))
    keep = [k is not None and k != o for k, o in zip(scene_keys([r[1] for r in rows]), scene_keys([r[0] for r in rows]))]
    rows = [r for r, ok in zip(rows, keep) if ok]
    texts = sorted({t for r in rows for t in r[:2]})
    tid = {t: j for j, t in enumerate(texts)}
    seqs = [vocab.encode_words(t) for t in texts]
    txt_feat = encode_texts(model, seqs, vocab, max_len)

    def scores(col: int):
        t, im = [tid[r[col]] for r in rows], [r[2] for r in rows]
        return itm_scores(model, seqs, emb, t, im, vocab, max_len), (txt_feat[t] * img_feat[im]).sum(1)

    itm_p, itc_p = scores(0)
    itm_n, itc_n = scores(1)
    out = {'model': what, 'images': n, 'kinds': {}}
    print(f'{what}: positive caption above the negative, {n} validation images (0.5 = chance)')
    print(f'{"negative":10s} {"pairs":>6s} {"ITM":>6s} {"ITC":>6s}')
    for k in ('color', 'size', 'left/right', 'above/below', 'shape', 'random'):
        m = torch.tensor([r[3] == k for r in rows])
        if not m.any():
            continue
        itm, itc = float((itm_p[m] > itm_n[m]).float().mean()), float((itc_p[m] > itc_n[m]).float().mean())
        out['kinds'][k] = {'pairs': int(m.sum()), 'itm': round(itm, 3), 'itc': round(itc, 3)}
        print(f'{k:10s} {int(m.sum()):6d} {itm:6.3f} {itc:6.3f}')
    # Does the image feature know where things are? Mean cosine between an image's ITC feature and
    # that of its mirror image (relations flip, nothing else changes) against another image's.
    px = normalize(torch.from_numpy(np.ascontiguousarray(split.pixels[:n])))
    feat = lambda x: torch.nn.functional.normalize(model.image_feat(model.image_embeds(x)), dim=-1)  # noqa: E731
    flips = {'left-right mirror': float((img_feat * feat(px.flip(3))).sum(1).mean()),
             'top-bottom mirror': float((img_feat * feat(px.flip(2))).sum(1).mean()),
             'another image': float((img_feat * img_feat.roll(1, 0)).sum(1).mean())}
    out['imageFeatureCosine'] = {k: round(v, 4) for k, v in flips.items()}
    print('ITC image feature cosine with its ' + ', '.join(f'{k} {v:.3f}' for k, v in flips.items()))
    if a.captions:
        caps = greedy_captions(model, split, n, max_len)
        err = out['captions'] = caption_errors(scene_keys(caps), split.keys[:n])
        print(f'greedy captions of {n} images: ' + ', '.join(f'{k} {v}' for k, v in sorted(err['kinds'].items())))
        print('  wrong attributes (objects matched): ' + ', '.join(f'{k} {v}' for k, v in err['attributes'].items()))
        print('  shapes, true -> written: ' + ', '.join(f'{k} {v}' for k, v in list(err['shapes'].items())[:8]))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
