"""Checks of the training data path that the recipe of models/default relies on (run by
test/models/train-data.test.ts; prints 'train data test: ok' at the end).

    cd models && /usr/bin/python3 -m mira_blip.test_data

1. --flip: a generated split, a batch with every image mirrored both ways and one with half of them:
   each caption (and ITC key) parses back, with the generator's own parser, to the scene of the
   mirrored image; each negative still names another scene; the pixels are the mirrored ones.
2. mirror_key on a hand-written key.
3. --pos-init sincos: the grid has the columns on the first half of the channels and the rows on the
   second, so a left-right mirror of the grid changes only the first half.
4. --itm-mirror-negatives: on a tiny model, ITM gets one more (negative) pair per relation caption
   among its rows, and the loss stays finite and differentiable.
5. --relation-aux: each mention token of a batch is a shape word whose size and color name an object
   of the image's scene, and its target is that object's centre as captions.jsonl's layout gives it
   (mirrored for mirrored rows); the loss is finite, reaches the aux heads and the vision encoder,
   and shows an untrained model's predictions to be far off.
6. --init-weights: weights saved from one tiny model load into a fresh one (same tensors, same
   temperature); a folder of another architecture is refused with a message naming what differs.
7. --object-aux: each object of a batch image has the shape, color and size of captions.jsonl's
   scene and its layout centre (mirrored for mirrored rows); on a hand-made case the loss picks
   the patch of each centre; on a batch it is finite and reaches the vision encoder.
8. diagnose.caption_errors on hand-made scene keys.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import argparse

import torch

from . import tokenizers as toks
from .data import COLOR_WORDS, REPO, SHAPE_WORDS, SIZE_WORDS, GroupBatcher, SceneSplit, mirror_key, scene_keys
from .train import AuxHeads, blip_losses, build_model, init_from_weights, model_config, object_aux_loss, save_weights, sincos_positions


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def flip_batches(root: Path) -> None:
    subprocess.run(['npx', 'tsx', 'src/scenes/cli.ts', '--seed', '11', '--n', '48', '--out', str(root)], cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    split = SceneSplit(root, 16, hard_negatives=True, workers=1)
    v = split.vocab
    names = {}  # key id -> key string, for every mirror of every image
    for axis, (h, vert) in enumerate(((False, False), (True, False), (False, True), (True, True))):
        for i, k in enumerate(split.keys):
            names[int(split.mirror_key_ids[axis, i])] = mirror_key(k, h, vert)
    for flip in (1.0, 0.5):
        batcher = GroupBatcher(split, 32, seed=3, flip=flip)
        b = batcher.batch(0, 40)
        fl = np.random.default_rng([3, 3, 0]).random((2, 32)) < flip
        caps = [v.decode(r[1:]) for r in b['ids'].tolist()]
        negs = [v.decode(r[1:]) for r in b['neg_ids'].tolist()]
        keys = scene_keys(caps + negs)
        own = [names[int(k)] for k in b['key'].tolist()]
        check(keys[: len(caps)] == own, f'flip {flip}: captions of mirrored images parse to the mirrored scene')
        for j, r in enumerate(b['neg_rows'].tolist()):
            check(keys[len(caps) + j] not in (None, own[r]), f'flip {flip}: negative {negs[j]!r} names another scene than its image')
        idx = b['index'].numpy()
        for r in range(32):
            want = split.pixels[idx[r]]
            want = want[..., ::-1] if fl[0, r] else want
            want = want[..., ::-1, :] if fl[1, r] else want
            check(np.array_equal(b['pixels'][r].numpy(), want), f'flip {flip}: row {r} pixels mirrored as drawn')
        if flip == 1.0:
            moved = sum(names[int(k)] != split.keys[i] for k, i in zip(b['key'].tolist(), idx))
            check(moved > 0, 'a full flip changes the scene of some images')
    b0 = GroupBatcher(split, 32, seed=3).batch(0, 40)
    check(np.array_equal(b0['key'].numpy(), split.key_ids[b0['index'].numpy()]), 'no flip: keys are the split\'s own')
    itm_mirror_pairs(split, b0)
    b1 = GroupBatcher(split, 32, seed=3, flip=1.0).batch(0, 40)
    relation_targets(root, split, b0, b1)
    object_targets(root, split, b0, b1)
    init_weights(split, root.parent / 'weights')


def tiny_args(**over) -> argparse.Namespace:
    a = dict(image_size=16, patch=8, vision_width=32, vision_layers=1, heads=2, mlp_ratio=2, text_width=32,
             text_layers=1, max_len=40, embed_dim=16, conv_stem=[8, 16])
    return argparse.Namespace(**{**a, **over})


def init_weights(split: SceneSplit, d: Path) -> None:
    tj = toks.from_words(split.meta['vocabulary'])
    cfg = model_config(tiny_args(), tj)
    src = build_model(cfg, True, 1)
    with torch.no_grad():
        src.temp.fill_(0.042)
    save_weights(src, cfg, tj, d)
    dst = build_model(cfg, True, 2)
    check(init_from_weights(dst, cfg, d, True) is None, 'same architecture: loaded')
    theirs, ours = src.state_dict(), dst.state_dict()
    check(set(theirs) == set(ours) and all(torch.equal(theirs[k], ours[k]) for k in theirs), 'every tensor as saved')
    check(dst.text_decoder.bert.encoder.layer[0].output.dense.weight is dst.text_encoder.encoder.layer[0].output.dense.weight, 'decoder sharing kept')
    wider = model_config(tiny_args(text_width=64), tj)
    err = init_from_weights(build_model(wider, True, 2), wider, d, True)
    check(err is not None and 'hidden_size' in err and 'text' in err, f'another architecture is refused, naming what differs: {err}')


def relation_targets(root: Path, split: SceneSplit, b0: dict, b1: dict) -> None:
    import json

    rows = [json.loads(l) for l in (root / 'captions.jsonl').read_text().splitlines()]
    v = split.vocab
    seen = 0
    for r, i in enumerate(b0['index'].tolist()):
        objs = rows[i]['scene']['objects']
        for t, xy in zip(b0['mention_tok'][r].tolist(), b0['mention_xy'][r].tolist()):
            if np.isnan(xy[0]):
                continue
            seen += 1
            w = [v.tokens[int(x)] for x in b0['ids'][r, t - 2 : t + 1]]
            check(w[2] in SHAPE_WORDS, f'row {r}: mention token {t} is {w[2]!r}, not a shape word')
            k = [n for n, o in enumerate(objs) if (o['size'], o['color'], o['shape']) == tuple(w)]
            k = k or [n for n, o in enumerate(objs) if (o['color'], o['shape']) == (w[1], w[2])]
            check(len(k) == 1, f'row {r}: {w} names not exactly one object of {objs}')
            lay = rows[i]['layout']['objects'][k[0]]
            check(np.allclose(xy, (lay['cx'], lay['cy'])), f'row {r}: target {xy} is not the centre of {w} ({lay})')
    check(seen >= 32, f'every caption names an object: {seen} mentions in 32 rows')
    named = ~torch.isnan(b0['mention_xy'])
    check(torch.equal(named, ~torch.isnan(b1['mention_xy'])) and torch.allclose(b1['mention_xy'][named], 1 - b0['mention_xy'][named]),
          'both mirrors: every target mirrored')

    model = build_model(model_config(tiny_args(), toks.from_words(split.meta['vocabulary'])), True, 0)
    aux = AuxHeads(32, 32)
    losses, stats = blip_losses(model, b0, v, torch.Generator().manual_seed(0), False, 'cpu', itm_rows=16, itm_mirror_negatives=True, relation_aux=aux)
    check(bool(torch.isfinite(losses['rel'])) and float(losses['rel']) > 0.02, f'rel loss finite and not yet learned: {float(losses["rel"])}')
    check('itm_acc_mirror' in stats, 'the mirror negatives are scored apart')
    losses['rel'].backward()
    check(aux.word.weight.grad is not None and aux.pair.weight.grad is not None, 'both aux heads get a gradient')
    check(float(model.vision_model.embeddings.position_embedding.grad.abs().sum()) > 0, 'the relation loss reaches the position grid')


def object_targets(root: Path, split: SceneSplit, b0: dict, b1: dict) -> None:
    import json

    rows = [json.loads(l) for l in (root / 'captions.jsonl').read_text().splitlines()]
    for r, i in enumerate(b0['index'].tolist()):
        objs, lay = rows[i]['scene']['objects'], rows[i]['layout']['objects']
        for k in range(3):
            attr, xy = b0['obj_attr'][r, k].tolist(), b0['obj_xy'][r, k].tolist()
            if k >= len(objs):
                check(attr == [-1, -1, -1] and np.isnan(xy[0]), f'row {r}: object {k} absent')
                continue
            o = objs[k]
            check((SHAPE_WORDS[attr[0]], COLOR_WORDS[attr[1]], SIZE_WORDS[attr[2]]) == (o['shape'], o['color'], o['size']), f'row {r}: attributes of object {k}')
            check(np.allclose(xy, (lay[k]['cx'], lay[k]['cy'])), f'row {r}: centre of object {k}')
    named = ~torch.isnan(b0['obj_xy'])
    check(torch.allclose(b1['obj_xy'][named], 1 - b0['obj_xy'][named]), 'both mirrors: every object centre mirrored')

    # hand-made: a 2 x 2 grid, one image, one object centred in the bottom-left patch (index 2); the
    # head reads channel 0 of each token, so only token 3 (patch 2) can make the loss small
    aux = AuxHeads(4, 4, relation=False, objects=True)
    n_out = aux.objects.out_features
    with torch.no_grad():
        aux.objects.weight.zero_(); aux.objects.bias.zero_()
        aux.objects.weight[:, 0] = -20.0
        for c in (1, len(SHAPE_WORDS) + 2, len(SHAPE_WORDS) + len(COLOR_WORDS) + 1, n_out - 1):  # square, blue, large, a centre
            aux.objects.weight[c, 0] = 20.0
        aux.objects.bias[n_out - 1] = -10.0
    tokens = torch.zeros(1, 5, 4)
    xy = torch.tensor([[[0.2, 0.7], [float('nan')] * 2, [float('nan')] * 2]])
    attr = torch.tensor([[[1, 2, 1], [-1, -1, -1], [-1, -1, -1]]])
    tokens[0, 3, 0] = 1.0
    low, acc = object_aux_loss(aux, tokens, xy, attr)
    check(float(low) < 1e-3 and acc == {'obj_shape_acc': 1.0, 'obj_color_acc': 1.0, 'obj_size_acc': 1.0}, f'the centre patch is read: loss {float(low)}, {acc}')
    tokens[0, 3, 0], tokens[0, 1, 0] = 0.0, 1.0
    high, acc = object_aux_loss(aux, tokens, xy, attr)
    check(float(high) > 5 and acc['obj_shape_acc'] == 0.0, f'another patch is not: loss {float(high)}')

    model = build_model(model_config(tiny_args(), toks.from_words(split.meta['vocabulary'])), True, 0)
    aux = AuxHeads(32, 32, relation=False, objects=True)
    losses, stats = blip_losses(model, b0, split.vocab, torch.Generator().manual_seed(0), False, 'cpu', itm=False, object_aux=aux)
    check(bool(torch.isfinite(losses['obj'])) and float(losses['obj']) > 1.0 and 'obj_shape_acc' in stats, f'obj loss finite, not yet learned: {float(losses["obj"])}')
    losses['obj'].backward()
    check(aux.objects.weight.grad is not None and model.vision_model.embeddings.patch_embedding.weight.grad is not None, 'the object loss reaches the head and the vision encoder')


def itm_mirror_pairs(split: SceneSplit, b: dict) -> None:
    model = build_model(model_config(tiny_args(), toks.from_words(split.meta['vocabulary'])), True, 0, pos_init='sincos')
    rows = 16
    pairs = []
    for on in (False, True):
        losses, stats = blip_losses(model, b, split.vocab, torch.Generator().manual_seed(0), False, 'cpu', itm_rows=rows,
                                    mirror_negatives=True, itm_mirror_negatives=on)
        check(all(bool(torch.isfinite(v)) for v in losses.values()), 'finite losses')
        pairs.append(stats['itm_pairs'])
    relation_rows = int((b['mirror'][:rows] > 0).sum())
    check(relation_rows > 0 and pairs[1] - pairs[0] == relation_rows, f'one mirrored-image ITM negative per relation caption: {pairs} for {relation_rows}')
    losses['itm'].backward()
    check(model.vision_model.embeddings.position_embedding.grad is not None, 'ITM reaches the position grid')


def main() -> int:
    key = 'large blue square+small red circle+small green star|small green star <above> large blue square;small red circle <left> large blue square'
    check(mirror_key(key, True, False) == 'large blue square+small red circle+small green star|large blue square <left> small red circle;small green star <above> large blue square', 'left-right mirror exchanges the <left> fact')
    check(mirror_key(key, False, True) == 'large blue square+small red circle+small green star|large blue square <above> small green star;small red circle <left> large blue square', 'top-bottom mirror exchanges the <above> fact')
    check(mirror_key(mirror_key(key, True, True), True, True) == key, 'mirroring twice is the identity')
    check(mirror_key('small red circle|', True, True) == 'small red circle|', 'one object: nothing to mirror')

    pos = sincos_positions(6, 128)
    check(tuple(pos.shape) == (1, 37, 128) and float(pos[0, 0].abs().max()) == 0.0, 'class slot zero, 36 patches')
    grid = pos[0, 1:].reshape(6, 6, 128)
    mirrored = grid.flip(1)  # columns reversed
    check(bool((mirrored[..., 64:] == grid[..., 64:]).all()), 'rows live in the second half')
    check(float((mirrored[..., :64] - grid[..., :64]).abs().max()) > 0.5, 'columns live in the first half')
    norms = grid.norm(dim=-1)
    check(abs(float(norms.mean()) - 8.0) < 1e-4, 'unit-amplitude sin/cos: norm sqrt(64) = 8 per patch')

    from .diagnose import caption_errors

    t = ['large blue square+small red circle|small red circle <left> large blue square', 'small red circle|']
    err = caption_errors([t[0], None, 'large blue circle+small red circle|small red circle <left> large blue circle',
                          'large blue square+small red circle|large blue square <left> small red circle',
                          'small red circle|', 'large blue square+small red circle|small red circle <left> large blue square'],
                         [t[0], t[0], t[0], t[0], t[0], t[1]])
    check(err['kinds'] == {'ok': 1, 'unparsed': 1, 'objects': 1, 'relations': 1, 'count': 2}, f'caption error kinds: {err["kinds"]}')
    check(err['attributes'] == {'shape': 1} and err['shapes'] == {'square -> circle': 1}, f'caption error attributes: {err}')

    with tempfile.TemporaryDirectory() as tmp:
        flip_batches(Path(tmp) / 'scenes')
    print('train data test: ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
