"""Can BLIP's ITM pathway learn a spatial relation? A probe with ideal image tokens.

    cd models && /usr/bin/python3 -m mira_blip.probe_relations                      # ITM alone
    cd models && /usr/bin/python3 -m mira_blip.probe_relations --word 1 --pair 1    # + relation targets

The image is replaced by what a perfect vision encoder could give: a 6 x 6 grid of tokens, each a
fixed random code of what is there (one of 16 colored shapes, or background) plus a 2-D sine-cosine
code of where. Two objects sit in one row. A fresh image-grounded text encoder (Mira's
BlipTextModel, 4 layers, width 128) and ITM head see "[ENC] a <c1> <s1> to the <left|right> of a
<c2> <s2>" against that image (a match) and against the image with the two objects' places
exchanged (no match), the pair that only the relation tells apart.

What it showed (TRAINING.md, "Teaching relations"): with ITM alone the loss stays at ln 2, at every
learning rate tried, even with ideal tokens; the vision encoder is not what is missing. Adding a
target at each object's word (its x) is not enough either, nor one at [ENC] alone (the first-named
object's x minus the second's). With both, ITM learns the relation (accuracy 1.0 by step 500).
train.py's --relation-aux adds the same two targets on real scenes.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from .modeling import BlipTextConfig, BlipTextModel

GRID, WIDTH, COLORS, SHAPES = 6, 128, 4, 4
PAD, ENC, A, TO, THE, OF, LEFT, RIGHT = range(8)
COLOR0 = 8
SHAPE0 = COLOR0 + COLORS
VOCAB = SHAPE0 + SHAPES


def position_code(scale: float) -> torch.Tensor:
    """[GRID * GRID, WIDTH]: sin/cos of the column and of the row at WIDTH/4 frequencies each."""
    ys, xs = torch.meshgrid(torch.arange(GRID), torch.arange(GRID), indexing='ij')
    out = torch.zeros(GRID, GRID, WIDTH)
    for i in range(WIDTH // 4):
        f = 1.0 / (100 ** (i / (WIDTH // 4)))
        out[..., 4 * i], out[..., 4 * i + 1] = torch.sin(xs * f), torch.cos(xs * f)
        out[..., 4 * i + 2], out[..., 4 * i + 3] = torch.sin(ys * f), torch.cos(ys * f)
    return out.reshape(GRID * GRID, WIDTH) * scale


def batch(n: int, g: torch.Generator, content: torch.Tensor, pos: torch.Tensor):
    """Captions, matching images, mirrored images, and the objects' columns (subject, object)."""
    c1 = torch.randint(COLORS, (n,), generator=g)
    s1 = torch.randint(SHAPES, (n,), generator=g)
    c2 = (c1 + torch.randint(1, COLORS, (n,), generator=g)) % COLORS  # two different colors
    s2 = torch.randint(SHAPES, (n,), generator=g)
    right = torch.randint(2, (n,), generator=g)
    row = torch.randint(GRID, (n,), generator=g)
    lo = torch.randint(0, GRID - 1, (n,), generator=g)
    hi = lo + 1 + (torch.rand(n, generator=g) * (GRID - 1 - lo)).long()
    x1, x2 = torch.where(right == 1, hi, lo), torch.where(right == 1, lo, hi)
    r = torch.arange(n)

    def image(xa, xb):
        tok = content[-1].expand(n, GRID * GRID, WIDTH).clone()
        tok[r, row * GRID + xa] = content[c1 * SHAPES + s1]
        tok[r, row * GRID + xb] = content[c2 * SHAPES + s2]
        return torch.cat([torch.zeros(n, 1, WIDTH), tok + pos], 1)  # a class slot, then the grid

    const = lambda v: torch.full((n,), v)
    ids = torch.stack([const(ENC), const(A), COLOR0 + c1, SHAPE0 + s1, const(TO), const(THE), LEFT + right, const(OF), const(A), COLOR0 + c2, SHAPE0 + s2], 1)
    return ids, image(x1, x2), image(x2, x1), x1, x2


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--lr', type=float, default=3e-4)
    ap.add_argument('--steps', type=int, default=600)
    ap.add_argument('--layers', type=int, default=4)
    ap.add_argument('--word', type=float, default=0.0, help='weight of the target at each object word: its column')
    ap.add_argument('--pair', type=float, default=0.0, help='weight of the target at [ENC]: first-named column minus second-named')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args(argv)
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    cfg = BlipTextConfig(vocab_size=VOCAB, hidden_size=WIDTH, num_hidden_layers=a.layers, num_attention_heads=4, intermediate_size=4 * WIDTH,
                         max_position_embeddings=16, encoder_hidden_size=WIDTH)
    text, itm, word, pair = BlipTextModel(cfg), nn.Linear(WIDTH, 2), nn.Linear(WIDTH, 1), nn.Linear(WIDTH, 1)
    content = torch.randn(COLORS * SHAPES + 1, WIDTH)  # the last one is the background
    pos = position_code(1.0)
    params = [p for m in (text, itm, word, pair) for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.05)
    g = torch.Generator().manual_seed(a.seed + 1)
    t0 = time.time()
    for step in range(1, a.steps + 1):
        ids, match, mirror, x1, x2 = batch(64, g, content, pos)
        hidden = text(torch.cat([ids, ids]), image_embeds=torch.cat([match, mirror]))
        logits = itm(hidden[:, 0])
        labels = torch.cat([torch.ones(64), torch.zeros(64)]).long()
        # the objects' columns in the image shown (the mirror exchanges them), centred
        col1 = torch.cat([x1, x2]).float() / GRID - 0.5
        col2 = torch.cat([x2, x1]).float() / GRID - 0.5
        l_word = F.mse_loss(word(hidden[:, [3, 10]]).squeeze(-1), torch.stack([col1, col2], 1))
        l_pair = F.mse_loss(pair(hidden[:, 0]).squeeze(-1), col1 - col2)
        l_itm = F.cross_entropy(logits, labels)
        loss = l_itm + a.word * l_word + a.pair * l_pair
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            acc = float((logits.argmax(1) == labels).float().mean())
            print(f'step {step}: itm {float(l_itm):.4f} (ln 2 = 0.6931) acc {acc:.3f} | word {float(l_word):.4f} pair {float(l_pair):.4f} | {time.time() - t0:.0f} s', flush=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
