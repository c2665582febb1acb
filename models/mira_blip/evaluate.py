"""Python-side validation for training curves (the official evaluation is the TypeScript
`npm run eval`, through Mira's runtime). Same definitions as the issue:

- A hit: the retrieved image's scene key equals the query caption's scene key (several images can
  share a scene). Queries for text->image are ALL captions of the first `n` images; the gallery is
  those `n` images. Image->text ranks all those captions for each image.
- ITC: cosine of the L2-normalized features. Re-rank: ITC top-k (k=16), then BLIP's rule
  score = ITM match logit (logits[:, 1], the first token set to [ENC]) + ITC cosine.
- Caption scene accuracy: greedy decoding after "[DEC] a picture of", stopped at [SEP]; the caption
  is parsed back by the generator's own parser (src/scenes/captions.ts, through scene_keys.ts) and
  counts when its scene key equals the image's. `caption_exact` is a proxy also reported: the
  caption equals one of the image's reference captions word for word.
"""
from __future__ import annotations

import contextlib
import time

import numpy as np
import torch

from .data import PROMPT, SceneSplit, normalize, pad_batch, scene_keys


def _ac(device: str, amp: bool):
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device_type='cuda' if str(device).startswith('cuda') else 'cpu', dtype=torch.bfloat16)


@torch.no_grad()
def encode_images(model, pixels_u8: np.ndarray, device='cpu', amp=False, bs=256):
    embeds, feats = [], []
    for s in range(0, len(pixels_u8), bs):
        px = normalize(torch.from_numpy(pixels_u8[s : s + bs]).to(device))
        with _ac(device, amp):
            e = model.image_embeds(px)
            f = model.image_feat(e)
        embeds.append(e.float())
        feats.append(f.float())
    return torch.cat(embeds), torch.nn.functional.normalize(torch.cat(feats), dim=-1)


@torch.no_grad()
def encode_texts(model, word_seqs, vocab, max_len, device='cpu', amp=False, bs=512):
    feats = []
    for s in range(0, len(word_seqs), bs):
        ids, mask = pad_batch(word_seqs[s : s + bs], vocab.cls, vocab.sep, max_len)
        with _ac(device, amp):
            f = model.text_feat(ids.to(device), mask.to(device))
        feats.append(f.float())
    return torch.nn.functional.normalize(torch.cat(feats), dim=-1)


@torch.no_grad()
def itm_scores(model, word_seqs, image_embeds, pairs_t, pairs_i, vocab, max_len, device='cpu', amp=False, bs=512):
    """ITM match logit for each (text pairs_t[j], image pairs_i[j])."""
    out = []
    for s in range(0, len(pairs_t), bs):
        tj, ij = pairs_t[s : s + bs], pairs_i[s : s + bs]
        ids, mask = pad_batch([word_seqs[t] for t in tj], vocab.enc, vocab.sep, max_len)
        with _ac(device, amp):
            logits = model.itm_logits(ids.to(device), mask.to(device), image_embeds[torch.as_tensor(ij)].to(device))
        out.append(logits[:, 1].float().cpu())
    return torch.cat(out)


def _recall(ranked_hits: torch.Tensor) -> dict[str, float]:
    """ranked_hits [Q, K] bool: whether the item at each rank is a hit."""
    return {f'r{k}': float(ranked_hits[:, :k].any(1).float().mean()) for k in (1, 5, 10)}


@torch.no_grad()
def retrieval_metrics(model, split: SceneSplit, n: int, max_len: int, k: int = 16, device='cpu', amp=False, i2t_rerank=True) -> dict:
    model.eval()
    n = min(n, len(split))
    vocab = split.vocab
    img_embeds, img_feat = encode_images(model, split.pixels[:n], device, amp)
    ncap = int(split.img_cap_off[n])
    words = [split.cap_tokens.get(j) for j in range(ncap)]
    cap_key = torch.from_numpy(split.key_ids[split.cap_img[:ncap]])
    img_key = torch.from_numpy(split.key_ids[:n])
    txt_feat = encode_texts(model, words, vocab, max_len, device, amp)
    sim = (txt_feat @ img_feat.t()).cpu()  # [captions, images]
    res: dict = {'n': n, 'queries': ncap, 'k': k}

    # text -> image
    order = sim.argsort(dim=1, descending=True)[:, :k]
    hits = img_key[order] == cap_key[:, None]
    res['t2i_itc'] = _recall(hits)
    pt = torch.arange(ncap).repeat_interleave(k)
    pi = order.reshape(-1)
    itm = itm_scores(model, words, img_embeds, pt.tolist(), pi.tolist(), vocab, max_len, device, amp).view(ncap, k)
    score = itm + torch.gather(sim, 1, order)
    rr = torch.gather(order, 1, score.argsort(dim=1, descending=True))
    res['t2i_rerank'] = _recall(img_key[rr] == cap_key[:, None])
    res['t2i_itm_only'] = _recall(img_key[torch.gather(order, 1, itm.argsort(dim=1, descending=True))] == cap_key[:, None])

    # image -> text
    simT = sim.t()
    order = simT.argsort(dim=1, descending=True)[:, :k]
    res['i2t_itc'] = _recall(cap_key[order] == img_key[:, None])
    if not i2t_rerank:
        return res
    pi = torch.arange(n).repeat_interleave(k)
    pt = order.reshape(-1)
    itm = itm_scores(model, words, img_embeds, pt.tolist(), pi.tolist(), vocab, max_len, device, amp).view(n, k)
    score = itm + torch.gather(simT, 1, order)
    rr = torch.gather(order, 1, score.argsort(dim=1, descending=True))
    res['i2t_rerank'] = _recall(cap_key[rr] == img_key[:, None])
    return res


@torch.no_grad()
def greedy_captions(model, split: SceneSplit, n: int, max_new: int, min_new: int = 1, device='cpu', amp=False, bs=256) -> list[str]:
    """Greedy decoding after "[DEC] a picture of", as Mira's runtime does with numBeams 1 and no
    repetition penalty: [SEP] is forbidden before min_new tokens; stops at [SEP] or max_new."""
    model.eval()
    v = split.vocab
    prefix = [v.bos] + v.encode_words(PROMPT)
    out: list[str] = []
    for s in range(0, min(n, len(split)), bs):
        px = normalize(torch.from_numpy(split.pixels[s : min(s + bs, n)]).to(device))
        with _ac(device, amp):
            img = model.image_embeds(px)
        ids = torch.tensor(prefix, device=device)[None].repeat(px.shape[0], 1)
        done = torch.zeros(px.shape[0], dtype=torch.bool, device=device)
        for t in range(max_new):
            with _ac(device, amp):
                logits = model.decoder_logits(ids, torch.ones_like(ids), img)[:, -1, :].float()
            if t < min_new:
                logits[:, v.sep] = -float('inf')
            nxt = logits.argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, v.sep), nxt)
            ids = torch.cat([ids, nxt[:, None]], 1)
            done |= nxt == v.sep
            if bool(done.all()):
                break
        out.extend(v.decode(r[len(prefix) :].tolist()) for r in ids.cpu())
    return out


def caption_metrics(model, split: SceneSplit, n: int, max_new: int, device='cpu', amp=False, use_parser=True) -> dict:
    n = min(n, len(split))
    caps = greedy_captions(model, split, n, max_new, device=device, amp=amp)
    exact = np.mean([c in split.captions[i] for i, c in enumerate(caps)])
    res = {'caption_exact': float(exact), 'examples': caps[:3]}
    if use_parser:
        keys = scene_keys(caps)
        res['caption_scene_acc'] = float(np.mean([k == split.keys[i] for i, k in enumerate(keys)]))
        res['caption_parse_rate'] = float(np.mean([k is not None for k in keys]))
    return res


def evaluate(model, split: SceneSplit, n: int, max_len: int, max_new: int, k: int = 16, device='cpu', amp=False, captions=True, i2t_rerank=True, caption_n=None) -> dict:
    t0 = time.time()
    was = model.training
    res = retrieval_metrics(model, split, n, max_len, k, device, amp, i2t_rerank)
    if captions:
        res.update(caption_metrics(model, split, caption_n or n, max_new, device, amp))
        res['caption_n'] = min(caption_n or n, len(split))
    res['eval_s'] = round(time.time() - t0, 1)
    model.train(was)
    return res
