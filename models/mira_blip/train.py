"""Train Mira's default BLIP from scratch on generated scenes (ITC + ITM + LM, as BLIP), with
checkpoints, exact resume, JSON progress lines and bundle export. See models/TRAINING.md.

    cd models && /usr/bin/python3 -m mira_blip.train --train ../data/scenes/train --val ../data/scenes/val \\
        --run runs/default --out default [--budget-min 50 | --steps N] [--seed 0]

stdout: one JSON object per line: {"event": "config"|"prerender"|"profile"|"step"|"eval"|"checkpoint"|
"export"|"done"|"error", ...}. Exit codes: 0 done, 1 failure, 2 bad arguments or data, 3 torch missing.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

# OpenMP threads that spin while waiting are ruinous on a shared 2-core machine (measured: a
# training step 5-15x slower while other jobs run); passive waiting costs little when idle.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover - depends on the machine
    print(json.dumps({'event': 'error', 'code': 3, 'message': f'{e}: install with `apt-get install python3-torch python3-numpy python3-pil` and run with MIRA_PYTHON=/usr/bin/python3'}), flush=True)
    sys.exit(3)

from . import tokenizers as toks
from .data import COLOR_WORDS, MAX_OBJECTS, PROMPT, SHAPE_WORDS, SIZE_WORDS, GroupBatcher, SceneSplit, WordVocab, normalize
from .modeling import BlipForTraining, config_from_dict


# ------------------------------------------------------------------------------------- logging
class Log:
    def __init__(self, path: Path | None):
        self.path = path

    def __call__(self, obj: dict) -> None:
        line = json.dumps(obj, separators=(',', ':'))
        print(line, flush=True)
        if self.path is not None:
            with open(self.path, 'a') as f:
                f.write(line + '\n')


# -------------------------------------------------------------------------------------- model
def model_config(a, tj: dict) -> dict:
    """A blip-parity style config.json (what export.py and modeling.config_from_dict read)."""
    sp = toks.special_ids(tj)
    return {
        'vision': {
            'image_size': a.image_size, 'patch_size': a.patch, 'hidden_size': a.vision_width,
            'num_hidden_layers': a.vision_layers, 'num_attention_heads': a.heads,
            'intermediate_size': a.vision_width * a.mlp_ratio, 'layer_norm_eps': 1e-6, 'hidden_act': 'gelu', 'qkv_bias': True,
            **({'conv_stem': list(a.conv_stem)} if getattr(a, 'conv_stem', None) else {}),
        },
        'text': {
            'vocab_size': toks.vocab_size(tj), 'hidden_size': a.text_width, 'num_hidden_layers': a.text_layers,
            'num_attention_heads': a.heads, 'intermediate_size': a.text_width * a.mlp_ratio,
            'max_position_embeddings': a.max_len, 'layer_norm_eps': 1e-12, 'hidden_act': 'gelu',
            'add_cross_attention': True, 'encoder_hidden_size': a.vision_width, 'hidden_dropout_prob': 0.0,
            'attention_probs_dropout_prob': 0.0, 'pad_token_id': sp['pad'], 'type_vocab_size': 2, 'initializer_range': 0.02,
        },
        'projection_dim': a.embed_dim,
        'bos_token_id': sp['bos'], 'enc_token_id': sp['enc'], 'sep_token_id': sp['eos'], 'pad_token_id': sp['pad'],
        'cls_token_id': sp['cls'],
    }


def sincos_positions(grid: int, width: int) -> torch.Tensor:
    """[1, 1 + grid*grid, width]: zeros for the class token, then per patch (row-major) sin/cos of
    its column on the first half of the channels and of its row on the second half, at width/4
    frequencies spaced geometrically from a quarter turn across the whole grid to a quarter turn per
    patch. Unit amplitude, so the position part of a patch token is about as large as its content
    (the stem's patch features have norm ~7 at width 128); the N(0, 0.02) init is ~20 times weaker
    and the default model's learned grid then barely encoded columns (TRAINING.md)."""
    if width % 4:
        raise ValueError(f'sincos position embedding needs a width divisible by 4, got {width}')
    omega = torch.logspace(math.log10(math.pi / (2 * grid)), math.log10(math.pi / 2), width // 4, dtype=torch.float64)
    coords = torch.arange(grid, dtype=torch.float64)
    def axis(v):  # [grid*grid] -> [grid*grid, width/2]
        a = v[:, None] * omega[None, :]
        return torch.cat([a.sin(), a.cos()], 1)
    ys, xs = torch.meshgrid(coords, coords, indexing='ij')
    pos = torch.cat([axis(xs.reshape(-1)), axis(ys.reshape(-1))], 1)
    return torch.cat([torch.zeros(1, width, dtype=torch.float64), pos])[None].float()


@torch.no_grad()
def init_weights(model: torch.nn.Module, std: float = 0.02, pos_init: str = 'normal') -> None:
    """BERT / timm-ViT style init: N(0, 0.02) for linear, conv and embedding weights, zero biases,
    LayerNorm (1, 0), ViT class embedding N(0, 0.02); position embeddings N(0, 0.02) or, with
    pos_init='sincos', the 2-D sine-cosine grid of `sincos_positions` (still a learned parameter,
    the same HF key, so export and the runtime do not change)."""
    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            m.weight.normal_(0, std)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, torch.nn.Embedding):
            m.weight.normal_(0, std)
            if m.padding_idx is not None:
                m.weight[m.padding_idx].zero_()
        elif isinstance(m, torch.nn.LayerNorm):
            m.weight.fill_(1.0)
            m.bias.zero_()
    emb = model.vision_model.embeddings
    if emb.stem is not None:  # no normalization inside the stem: He init keeps its activations at unit scale
        for m in emb.stem.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity='relu')
    emb.class_embedding.normal_(0, std)
    if pos_init == 'sincos':
        n, width = emb.position_embedding.shape[1:]
        emb.position_embedding.copy_(sincos_positions(int(round((n - 1) ** 0.5)), width))
    else:
        emb.position_embedding.normal_(0, std)
    model.text_decoder.cls.predictions.bias.zero_()


def share_text_weights(model: BlipForTraining) -> None:
    """BLIP pre-training's parameter sharing (blip_pretrain.py, tie_encoder_decoder_weights with
    skip key '/attention'): the decoder shares the encoder's embeddings, cross-attention and
    feed-forward layers; only the causal self-attention is its own. The LM loss then trains the
    cross-attention that ITM uses from the first step. Export copies the shared tensors under both
    HF key sets (text_encoder.* and text_decoder.bert.*)."""
    enc, dec = model.text_encoder, model.text_decoder.bert
    dec.embeddings = enc.embeddings
    for le, ld in zip(enc.encoder.layer, dec.encoder.layer):
        ld.crossattention = le.crossattention
        ld.intermediate = le.intermediate
        ld.output = le.output
    model.text_decoder.tie_weights()


class AmpLayerNorm(torch.nn.LayerNorm):
    """LayerNorm that accepts bfloat16 input under CPU autocast (torch 1.13's CPU layer_norm wants
    input and weight of one dtype): computes in float32. Same parameters and state-dict keys."""

    def forward(self, x):
        return F.layer_norm(x.float(), self.normalized_shape, self.weight, self.bias, self.eps)


def amp_layernorms(model: torch.nn.Module) -> None:
    for m in model.modules():
        if type(m) is torch.nn.LayerNorm:
            m.__class__ = AmpLayerNorm


def build_model(cfg_dict: dict, share: bool, seed: int, pos_init: str = 'normal') -> BlipForTraining:
    torch.manual_seed(seed)
    model = BlipForTraining(config_from_dict(cfg_dict))
    init_weights(model, pos_init=pos_init)
    amp_layernorms(model)
    if share:
        share_text_weights(model)
    return model


# ------------------------------------------------------------------------------------- losses
def autocast(device: str, enabled: bool):
    return torch.autocast(device_type='cuda' if device.startswith('cuda') else 'cpu', dtype=torch.bfloat16, enabled=enabled)


def lm_loss(lm_logits: torch.Tensor, b: dict) -> torch.Tensor:
    """Next-token cross entropy on the caption tokens and [SEP] (the prompt is masked), label smoothing 0.1."""
    shifted = lm_logits[:, :-1].float()
    return F.cross_entropy(shifted.reshape(-1, shifted.shape[-1]), b['lm_labels'][:, 1:].reshape(-1), ignore_index=-100, label_smoothing=0.1)


def with_own_negative(logits: torch.Tensor, tgt: torch.Tensor, rows: torch.Tensor, own: torch.Tensor):
    """One more ITC column: row r's own hard negative (`own[i]` for r = rows[i]), never a target;
    rows without one get -1e4 there (not -inf: 0 * -inf is nan in the loss)."""
    extra = torch.full((logits.shape[0], 1), -1e4, device=logits.device)
    extra[rows, 0] = own
    return torch.cat([logits, extra], 1), F.pad(tgt, (0, 1))


class AuxHeads(torch.nn.Module):
    """Training-only heads of the auxiliary losses (not exported). Relation (`word`, `pair`): from
    the image-grounded text encoder's last layer, each named object's centre at its shape word, and
    at [ENC] the first-named object's offset from the second and the third. Objects (`objects`):
    from the vision encoder's last layer, at each patch whether an object's centre lies in it, and
    at that patch the object's shape, color and size."""

    def __init__(self, text_width: int, vision_width: int, relation: bool = True, objects: bool = False):
        super().__init__()
        if relation:
            self.word = torch.nn.Linear(text_width, 2)
            self.pair = torch.nn.Linear(text_width, 2 * (MAX_OBJECTS - 1))
        if objects:
            self.objects = torch.nn.Linear(vision_width, len(SHAPE_WORDS) + len(COLOR_WORDS) + len(SIZE_WORDS) + 1)


def object_aux_loss(aux: AuxHeads, image_embeds: torch.Tensor, xy: torch.Tensor, attr: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Cross entropy of the `objects` head on the vision encoder's patch tokens (image_embeds
    [B, 1 + g*g, W], row-major grid after the CLS token): at the patch holding each object's centre
    (xy [B, 3, 2] in [0, 1], NaN: no object) its shape, color and size (attr [B, 3, 3], indices
    into SHAPE_WORDS, COLOR_WORDS, SIZE_WORDS); at every patch, whether a centre lies in it.

    Why: shapes were most of the caption errors of mira-blip-scenes@3 (circle written as square,
    triangle as diamond: TRAINING.md, "Where the captions go wrong"). The three objectives reach
    the vision encoder only through pooled features or the cross-attention; this target asks
    each object's own tokens to say what it is, which the decoder's cross-attention then reads."""
    g = int(round((image_embeds.shape[1] - 1) ** 0.5))
    out = aux.objects(image_embeds[:, 1:].float())  # [B, g*g, C]
    have = attr[..., 0] >= 0
    cell = (torch.nan_to_num(xy) * g).long().clamp(0, g - 1)
    at = cell[..., 1] * g + cell[..., 0]  # [B, 3] patch index of each centre
    centre = torch.zeros(out.shape[:2], device=out.device)
    rows = torch.arange(out.shape[0], device=out.device)[:, None].expand_as(at)
    centre[rows[have], at[have]] = 1.0
    l_centre = F.binary_cross_entropy_with_logits(out[..., -1], centre)
    picked = out.gather(1, at[..., None].expand(-1, -1, out.shape[-1]))[have]  # [objects, C]
    a = attr[have]
    ns, nc = len(SHAPE_WORDS), len(COLOR_WORDS)
    parts = (picked[:, :ns], picked[:, ns : ns + nc], picked[:, ns + nc : -1])
    l_attr = sum(F.cross_entropy(p, a[:, j]) for j, p in enumerate(parts))
    with torch.no_grad():
        acc = {f'obj_{n}_acc': float((p.argmax(1) == a[:, j]).float().mean()) for j, (n, p) in enumerate(zip(('shape', 'color', 'size'), parts))}
    return l_centre + l_attr, acc


def relation_aux_loss(aux: AuxHeads, hidden: torch.Tensor, tok: torch.Tensor, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared errors (at the words, at [ENC]) of the relation heads (AuxHeads.word, .pair). hidden [R, T, W]: ITM encoder states of R
    pairs whose image shows the objects the caption names; tok [R, 3]: token index of each mention;
    xy [R, 3, 2]: the mentioned objects' centres in that image (NaN: no mention).

    Why: ITM alone cannot learn a relation (TRAINING.md, "Teaching relations"): a caption against
    its mirrored image differs only in which object sits where, and the evidence needs two steps
    learned together (a word's cross-attention finding its object, [ENC] comparing two objects by
    their role in the caption); neither step lowers the ITM loss before the other exists, so the loss
    stays at ln 2. These targets give each step its own gradient."""
    have = ~torch.isnan(xy[..., 0])
    tgt = torch.nan_to_num(xy) - 0.5
    at = hidden.gather(1, tok[..., None].expand(-1, -1, hidden.shape[-1]))
    err = ((aux.word(at.float()) - tgt) ** 2).sum(-1)
    l_word = err[have].mean() if bool(have.any()) else hidden.new_zeros(())
    off = tgt[:, :1] - tgt[:, 1:]
    have_off = have[:, :1] & have[:, 1:]
    err = ((aux.pair(hidden[:, 0].float()).view(-1, MAX_OBJECTS - 1, 2) - off) ** 2).sum(-1)
    l_pair = err[have_off].mean() if bool(have_off.any()) else hidden.new_zeros(())
    return l_word, l_pair


def blip_losses(model: BlipForTraining, b: dict, vocab: WordVocab, gen: torch.Generator, amp: bool, device: str, swap_negatives: bool = True, itm_balance: bool = True, lm: bool = True, itm: bool = True, itc_negatives: bool = False, itm_rows: int = 0, mirror_negatives: bool = False, itm_mirror_negatives: bool = False, relation_aux: AuxHeads | None = None, object_aux: AuxHeads | None = None):
    """BLIP's three losses on one batch. Returns (dict of scalar losses, stats).
    b: pixels (uint8, normalized here with CLIP mean/std) or pixel_values (already normalized), key
    (same key = positive pair), ids/mask ([CLS] first), lm_ids/lm_mask/lm_labels, optional neg_*.
    `vocab` only needs `.enc` (and `.cls` with itc_negatives). lm=False skips the captioning loss,
    itm=False the matching loss (the entry is then 0). itc_negatives: each image's row of the
    image->text ITC softmax gets one more column, its own swapped-caption negative (an addition to
    BLIP, as NegCLIP does): the image feature must then encode what the swap changed (which color
    or size goes with which shape, the relation, and with --shape-negatives the shapes), which
    random in-batch captions, already different in color, never ask of it. mirror_negatives: each
    relation caption's own image mirrored is one more column of its text->image ITC row;
    itm_mirror_negatives: that mirrored image is also an ITM negative for the caption (rows < itm_rows).
    relation_aux: adds the `rel` loss (relation_aux_loss) on the ITM positives and mirror negatives.
    object_aux: adds the `obj` loss (object_aux_loss) on the batch's images (both phases)."""
    key = b['key']
    pos = key[:, None] == key[None, :]  # same scene = positive (BLIP retrieval's idx rule)
    with autocast(device, amp):
        img = model.image_embeds(b['pixel_values'] if 'pixel_values' in b else normalize(b['pixels']))
        img_feat = model.image_feat(img)
        txt_feat = model.text_feat(b['ids'], b['mask'])
    img_feat, txt_feat = img_feat.float(), txt_feat.float()
    extra, extra_stats = {}, {}
    if object_aux is not None:
        extra['obj'], extra_stats = object_aux_loss(object_aux, img, b['obj_xy'], b['obj_attr'])
    sim_i2t, sim_t2i = model.itc_logits(img_feat, txt_feat)
    tgt = pos.float() / pos.float().sum(1, keepdim=True)
    i2t = sim_i2t
    if itc_negatives and 'neg_ids' in b:
        neg_cls = b['neg_ids'].clone()
        neg_cls[:, 0] = vocab.cls
        with autocast(device, amp):
            neg_feat = model.text_feat(neg_cls, b['neg_mask']).float()
        nr = b['neg_rows']
        i2t, tgt_i2t = with_own_negative(sim_i2t, tgt, nr, (img_feat[nr] * neg_feat).sum(1) / model.temp.clamp(0.001, 0.5))
    else:
        tgt_i2t = tgt
    t2i = sim_t2i
    tgt_t2i = tgt
    mr, mir_img = None, None
    if (mirror_negatives or itm_mirror_negatives) and 'mirror' in b and bool((b['mirror'] > 0).any()):
        # Each caption naming a relation also scores its own image mirrored (left-right for a
        # left/right relation, else top-bottom): that image shows the same objects with the relation
        # flipped, a negative by construction that only layout can tell apart.
        px = b['pixel_values'] if 'pixel_values' in b else normalize(b['pixels'])
        mr = torch.nonzero(b['mirror'] > 0).squeeze(1)
        flipped = torch.where((b['mirror'][mr] == 1)[:, None, None, None], px[mr].flip(3), px[mr].flip(2))
        with autocast(device, amp):
            mir_img = model.image_embeds(flipped)
            mir_feat = model.image_feat(mir_img).float()
        if mirror_negatives:
            t2i, tgt_t2i = with_own_negative(sim_t2i, tgt, mr, (txt_feat[mr] * mir_feat).sum(1) / model.temp.clamp(0.001, 0.5))
    l_itc = (-(F.log_softmax(i2t, 1) * tgt_i2t).sum(1).mean() - (F.log_softmax(t2i, 1) * tgt_t2i).sum(1).mean()) / 2

    n = key.shape[0]
    if not itm:
        with autocast(device, amp):
            lm_logits = model.decoder_logits(b['lm_ids'], b['lm_mask'], img) if lm else None
        l_lm = lm_loss(lm_logits, b) if lm else torch.zeros((), device=key.device)
        with torch.no_grad():
            itc_acc = float(pos[torch.arange(n, device=key.device), sim_t2i.argmax(1)].float().mean())
        return {'itc': l_itc, 'itm': torch.zeros((), device=key.device), 'lm': l_lm, **extra}, {'itc_acc': itc_acc, 'itm_pairs': 0, **extra_stats}

    # ITM hard negatives: sampled from the in-batch ITC softmax, never the same scene (BLIP)
    with torch.no_grad():
        w_i2t = F.softmax(sim_i2t.detach(), 1).masked_fill(pos, 0) + 1e-9 * (~pos)
        w_t2i = F.softmax(sim_t2i.detach(), 1).masked_fill(pos, 0) + 1e-9 * (~pos)
        ok = (~pos).any(1)
        w_i2t[~ok] = 1.0  # a row with only positives (never in practice): any text, dropped below
        w_t2i[~ok] = 1.0
        neg_txt = torch.multinomial(w_i2t.cpu(), 1, generator=gen).squeeze(1).to(key.device)
        neg_img = torch.multinomial(w_t2i.cpu(), 1, generator=gen).squeeze(1).to(key.device)
    # ITM on the first `itm_rows` rows only (all when 0): its pairs run the cross-attention encoder
    # and cost more than the rest of the step; the negatives are still mined from the whole batch.
    m = n if not itm_rows or itm_rows >= n else itm_rows
    ok = ok.clone()
    ok[m:] = False
    enc_ids = b['ids'].clone()
    enc_ids[:, 0] = vocab.enc
    rows = torch.arange(n, device=key.device)
    ids_parts = [enc_ids[:m], enc_ids[ok], enc_ids[neg_txt][ok]]
    mask_parts = [b['mask'][:m], b['mask'][ok], b['mask'][neg_txt][ok]]
    img_idx = [rows[:m], neg_img[ok], rows[ok]]
    n_pos = m
    if swap_negatives and 'neg_ids' in b:
        keep = b['neg_rows'] < m
        ids_parts.append(b['neg_ids'][keep])
        mask_parts.append(b['neg_mask'][keep])
        img_idx.append(b['neg_rows'][keep])
    images = img
    n_mir = 0
    if itm_mirror_negatives and mr is not None:
        # the caption against its own image mirrored: the same objects, its relation the other way
        keep = mr < m
        ids_parts.append(enc_ids[mr[keep]])
        mask_parts.append(b['mask'][mr[keep]])
        img_idx.append(n + torch.nonzero(keep).squeeze(1))
        images = torch.cat([img, mir_img])
        mir_rows, n_mir = mr[keep], int(keep.sum())
    t = max(x.shape[1] for x in ids_parts)
    itm_ids = torch.cat([F.pad(x, (0, t - x.shape[1])) for x in ids_parts])
    itm_mask = torch.cat([F.pad(x, (0, t - x.shape[1])) for x in mask_parts])
    itm_img_idx = torch.cat(img_idx)
    labels = torch.zeros(itm_ids.shape[0], dtype=torch.long, device=key.device)
    labels[:n_pos] = 1
    with autocast(device, amp):
        itm_hidden = model.itm_hidden(itm_ids, itm_mask, images[itm_img_idx])
        itm_logits = model.itm_head(itm_hidden[:, 0, :])  # model.itm_logits, keeping the states for --relation-aux
        lm_logits = model.decoder_logits(b['lm_ids'], b['lm_mask'], img) if lm else None
    itm_logits = itm_logits.float()
    l_rel = None
    if relation_aux is not None:
        # the pairs whose image shows the caption's objects: the positives, and the mirror negatives
        # with their centres mirrored
        tok, xy = [b['mention_tok'][:m]], [b['mention_xy'][:m]]
        hid = [itm_hidden[:m]]
        if n_mir:
            mxy = b['mention_xy'][mir_rows].clone()
            lr_rows = b['mirror'][mir_rows] == 1
            mxy[lr_rows, :, 0] = 1.0 - mxy[lr_rows, :, 0]
            mxy[~lr_rows, :, 1] = 1.0 - mxy[~lr_rows, :, 1]
            tok.append(b['mention_tok'][mir_rows])
            xy.append(mxy)
            hid.append(itm_hidden[-n_mir:])
        l_word, l_pair = relation_aux_loss(relation_aux, torch.cat(hid), torch.cat(tok), torch.cat(xy))
        l_rel = l_word + l_pair
    if itm_balance:  # positives and negatives weigh the same in total (BLIP has 1 : 2 unweighted)
        n_neg = labels.shape[0] - n_pos
        l_itm = F.cross_entropy(itm_logits, labels, weight=torch.tensor([1.0, n_neg / n_pos], device=labels.device))
    else:
        l_itm = F.cross_entropy(itm_logits, labels)
    if lm:
        l_lm = lm_loss(lm_logits, b)
    else:
        l_lm = torch.zeros((), device=key.device)
    with torch.no_grad():
        pred = itm_logits.argmax(1)
        stats = {
            'itm_acc_pos': float((pred[:n_pos] == 1).float().mean()),
            'itm_acc_neg': float((pred[n_pos:] == 0).float().mean()),
            'itc_acc': float(pos[torch.arange(n, device=key.device), sim_t2i.argmax(1)].float().mean()),
            'itm_pairs': int(itm_ids.shape[0]),
        }
        if n_mir:
            stats['itm_acc_mirror'] = float((pred[-n_mir:] == 0).float().mean())
        if l_rel is not None:
            stats.update(rel_word=float(l_word), rel_pair=float(l_pair))
    stats.update(extra_stats)
    losses = {'itc': l_itc, 'itm': l_itm, 'lm': l_lm, **extra}
    if l_rel is not None:
        losses['rel'] = l_rel
    return losses, stats


# A step with ITM costs about this much more than one without (measured on this 2-core machine at 64 px,
# batch 128); replaced by the measured ratio once both phases have run.
ITM_COST_RATIO = 2.2


def planned_total(step: int, left_s: float, state: dict, itm_from: float) -> int:
    """The schedule length whose remaining steps fit `left_s` seconds, with the phase before
    `itm_from` (ITC + LM) and the phase after it (all three) at their own speeds."""
    s1 = state.get('s_no_itm') or state['s_per_step'] / ITM_COST_RATIO
    s2 = state.get('s_itm') or s1 * ITM_COST_RATIO
    if itm_from <= 0 or state.get('itm_on') or step >= itm_from * state['total']:
        return step + int(left_s / s2)
    # step < F*T: left = s1 (F T - step) + s2 (1 - F) T
    return int((left_s + s1 * step) / (s1 * itm_from + s2 * (1 - itm_from)))


def lr_at(step: int, total: int, warmup: int, base: float, final_ratio: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def make_optimizer(model, lr: float, wd: float, *extra: torch.nn.Module):
    """AdamW over the model's parameters and those of `extra` training-only modules."""
    decay, no_decay = [], []
    seen = set()
    named = [(name, p) for mod in (model, *extra) for name, p in mod.named_parameters()]
    for name, p in named:
        if id(p) in seen or not p.requires_grad:
            continue
        seen.add(id(p))
        (no_decay if p.ndim < 2 or 'embedding' in name or name == 'temp' else decay).append(p)
    return torch.optim.AdamW([{'params': decay, 'weight_decay': wd}, {'params': no_decay, 'weight_decay': 0.0}], lr=lr, betas=(0.9, 0.98), eps=1e-6)


def init_from_weights(model: BlipForTraining, cfg_dict: dict, d: Path, share: bool) -> str | None:
    """Loads a weights/ folder (retrieval + captioning safetensors, config.json) into `model`;
    returns why it cannot (a different architecture, missing files) or None."""
    files = [d / 'config.json', d / 'retrieval.safetensors', d / 'captioning.safetensors']
    for f in files:
        if not f.is_file():
            return f'--init-weights: {f} is missing'
    theirs = json.loads(files[0].read_text())
    for part in ('vision', 'text'):
        diff = sorted(k for k in set(cfg_dict[part]) | set(theirs.get(part, {})) if cfg_dict[part].get(k) != theirs.get(part, {}).get(k))
        if diff:
            return f'--init-weights: {files[0]} is another architecture ({part}: {", ".join(diff)} differ from the command line)'
    model.load_weights_dir(d)
    if share:
        share_text_weights(model)
    return None


# --------------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, model, opt, step: int, state: dict, aux: torch.nn.Module | None = None) -> None:
    tmp = path.with_suffix('.tmp')
    torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'step': step, 'state': state,
                'torch_rng': torch.get_rng_state(), **({'aux': aux.state_dict()} if aux is not None else {})}, tmp)
    os.replace(tmp, path)


# -------------------------------------------------------------------------------------- export
def save_weights(model: BlipForTraining, cfg_dict: dict, tj: dict, d: Path) -> None:
    from .safetensors_io import save_file

    d.mkdir(parents=True, exist_ok=True)
    meta = {'format': 'pt', 'trained_by': 'mira_blip.train'}
    save_file({k: v.detach().float().clone().contiguous() for k, v in model.retrieval_state_dict().items()}, d / 'retrieval.safetensors', meta)
    save_file({k: v.detach().float().clone().contiguous() for k, v in model.captioning_state_dict().items()}, d / 'captioning.safetensors', meta)
    (d / 'config.json').write_text(json.dumps({**cfg_dict, 'itc_temp': round(float(model.temp), 6)}, indent=1))
    toks.write(tj, d / 'tokenizer.json')


def halve_safetensors(path: Path) -> None:
    """Rewrite a safetensors file with its float32 tensors as float16 (lossless for weights already
    rounded to float16; loaders convert back with .float())."""
    from .safetensors_io import load_file_with_metadata, save_file

    tensors, meta = load_file_with_metadata(path)
    save_file({k: (v.half() if v.dtype == torch.float32 else v) for k, v in tensors.items()}, path, {**meta, 'dtype': 'float16'})


def export_bundle(weights_dir: Path, out: Path, name: str, version: str, max_len: int, caption: dict, about: dict, fp16: bool = False) -> None:
    """Runs helper export (mira_blip.export) on saved weights, then sets the captioning defaults
    and the provenance (`about`) in the manifest."""
    from . import export

    args = ['--retrieval', str(weights_dir / 'retrieval.safetensors'), '--captioning', str(weights_dir / 'captioning.safetensors'),
            '--config', str(weights_dir / 'config.json'), '--tokenizer', str(weights_dir / 'tokenizer.json'),
            '--out', str(out), '--name', name, '--version', version, '--max-text-len', str(max_len)]
    if fp16:
        args.append('--fp16')
    import contextlib
    import io

    buf = io.StringIO()
    grad = torch.is_grad_enabled()  # export.main switches autograd off for the process
    with contextlib.redirect_stdout(buf):
        rc = export.main(args)
    torch.set_grad_enabled(grad)
    if rc not in (0, None):
        raise RuntimeError(f'export failed ({rc}): {buf.getvalue()}')
    mpath = out / 'manifest.json'
    m = json.loads(mpath.read_text())
    m['caption'] = caption
    m['about'] = {**m.get('about', {}), **about}
    mpath.write_text(json.dumps(m, indent=2) + '\n')


# ---------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_argument_group('data')
    g.add_argument('--train', type=Path, required=True, help='training split folder (seed 1)')
    g.add_argument('--val', type=Path, required=True, help='validation split folder (seed 2)')
    g.add_argument('--run', type=Path, required=True, help='run folder: checkpoint, log.jsonl, weights')
    g.add_argument('--out', type=Path, help='bundle folder to export into when training ends')
    g = ap.add_argument_group('model')
    g.add_argument('--image-size', type=int, default=48)
    g.add_argument('--patch', type=int, default=8)
    g.add_argument('--conv-stem', type=lambda v: [int(x) for x in v.split(',')] if v else [], default=[],
                   help='channel widths of a convolutional stem before the ViT, e.g. 32,64 with --patch 8 (TRAINING.md); default none')
    g.add_argument('--pos-init', choices=['normal', 'sincos'], default='normal', help='ViT position embedding init: N(0, 0.02) (BLIP) or a 2-D sine-cosine grid (TRAINING.md)')
    g.add_argument('--vision-width', type=int, default=128)
    g.add_argument('--vision-layers', type=int, default=4)
    g.add_argument('--text-width', type=int, default=128)
    g.add_argument('--text-layers', type=int, default=4)
    g.add_argument('--heads', type=int, default=4)
    g.add_argument('--mlp-ratio', type=int, default=4)
    g.add_argument('--embed-dim', type=int, default=128)
    g.add_argument('--max-len', type=int, default=40, help='tokens, special tokens included (tokenizer.maxLength)')
    g.add_argument('--no-share', action='store_true', help='separate decoder (default: BLIP pre-training sharing)')
    g = ap.add_argument_group('optimisation')
    g.add_argument('--batch', type=int, default=128)
    g.add_argument('--lr', type=float, default=7e-4)
    g.add_argument('--wd', type=float, default=0.05)
    g.add_argument('--warmup', type=int, default=300)
    g.add_argument('--final-lr-ratio', type=float, default=0.05)
    g.add_argument('--steps', type=int, default=3000, help='schedule length (warm-up, then cosine decay to the end)')
    g.add_argument('--budget-min', type=float, default=0.0, help='training-loop budget in minutes (evaluations included); when the measured speed says '
                   '--steps will not fit, the schedule is shortened (a "replan" event; it never grows). 0: no limit, exactly reproducible')
    g.add_argument('--w-itc', type=float, default=1.0)
    g.add_argument('--w-itm', type=float, default=2.0)
    g.add_argument('--w-lm', type=float, default=1.0)
    g.add_argument('--itm-from', type=float, default=0.0, help='fraction of the schedule trained with ITC + LM only before ITM joins '
                   '(0: all three from the first step, as BLIP). ITM is most of the cost of a step and learns little before the '
                   'shared cross-attention and the image features are useful; LM trains that cross-attention meanwhile')
    g.add_argument('--shape-negatives', action='store_true', help='also give ITM captions with one shape word replaced (experimental, see TRAINING.md)')
    g.add_argument('--itm-rows', type=int, default=0, help='ITM on the first N rows of each batch only (0: all); their negatives are still mined from the whole batch')
    g.add_argument('--mirror-negatives', action='store_true', help="ITC text->image also scores each relation caption against its own image mirrored (see TRAINING.md)")
    g.add_argument('--itm-mirror-negatives', action='store_true', help='ITM also pairs each relation caption with its own image mirrored, as a negative (see TRAINING.md)')
    g.add_argument('--itc-negatives', action='store_true', help="ITC image->text also scores each image against its own swapped-caption negative (see TRAINING.md)")
    g.add_argument('--flip', type=float, default=0.0, help='probability of mirroring a training image left-right, and (independently) top-bottom, '
                   'with its captions, negatives and scene rewritten to match (left <-> right, above <-> below); 0: off')
    g.add_argument('--relation-aux', type=float, default=0.0, help='weight of the relation auxiliary loss on the ITM encoder: each named object\'s '
                   'centre at its word, the first-named object\'s offset from the others at [ENC] (TRAINING.md, "Teaching relations"); 0: off')
    g.add_argument('--object-aux', type=float, default=0.0, help='weight of the object auxiliary loss on the vision encoder: at the patch of each '
                   'object\'s centre its shape, color and size, at every patch whether a centre lies there (TRAINING.md); 0: off')
    g.add_argument('--init-weights', type=Path, help='start from these weights (a bundle\'s or a run\'s weights/ folder, same architecture) '
                   'instead of a random init')
    g.add_argument('--no-swap-negatives', action='store_true', help='ITM without the swapped-caption text negatives')
    g.add_argument('--no-itm-balance', action='store_true', help='plain ITM cross entropy (default: positives weighted to balance the negatives)')
    g.add_argument('--seed', type=int, default=0)
    g = ap.add_argument_group('machine')
    g.add_argument('--device', default='auto', help='auto|cpu|cuda')
    g.add_argument('--threads', type=int, default=0, help='torch threads (0: all cores)')
    g.add_argument('--amp', choices=['auto', 'bf16', 'off'], default='auto', help='bfloat16 autocast (auto: on for CUDA bf16 / CPUs with avx512_bf16 or amx)')
    g = ap.add_argument_group('evaluation and checkpoints')
    g.add_argument('--evals', type=int, default=6, help='validation passes during training')
    g.add_argument('--eval-n', type=int, default=400, help='validation images per pass during training')
    g.add_argument('--eval-caption-n', type=int, default=200, help='of which captioned (greedy) per pass during training')
    g.add_argument('--final-eval-n', type=int, default=1000)
    g.add_argument('--log-every', type=int, default=25)
    g.add_argument('--ckpt-min', type=float, default=3.0, help='minutes between checkpoints')
    g.add_argument('--name', default='mira-blip-scenes')
    g.add_argument('--version', default='1')
    g.add_argument('--fp16-graphs', action='store_true', help='float16 weights inside the ONNX graphs (export --fp16)')
    g.add_argument('--weights-fp32', action='store_true', help='keep full float32 weights (default: round to float16 and store weights/*.safetensors as float16)')
    g.add_argument('--profile', type=int, default=0, help='only time N steps and exit')
    g.add_argument('--start-eval', action='store_true', help='also validate before the first step')
    return ap.parse_args(argv)


def cpu_has_bf16() -> bool:
    try:
        flags = Path('/proc/cpuinfo').read_text()
    except OSError:
        return False
    return 'avx512_bf16' in flags or 'amx_bf16' in flags


def main(argv=None) -> int:
    a = parse_args(argv)
    device = ('cuda' if torch.cuda.is_available() else 'cpu') if a.device == 'auto' else a.device
    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    amp = {'bf16': True, 'off': False}.get(a.amp, (torch.cuda.is_bf16_supported() if device.startswith('cuda') else cpu_has_bf16()))
    a.run.mkdir(parents=True, exist_ok=True)
    log = Log(a.run / 'log.jsonl')
    ckpt_path = a.run / 'checkpoint.pt'

    resume = torch.load(ckpt_path, map_location='cpu') if ckpt_path.is_file() and not a.profile else None
    if resume is not None:
        saved = resume['state']['args']
        for k, v in saved.items():  # the run's own settings win over the command line
            if k not in ('budget_min', 'device', 'threads', 'out', 'profile'):
                setattr(a, k, Path(v) if k in ('train', 'val', 'run') and v is not None else v)

    # data
    for d in (a.train, a.val):
        if not (d / 'captions.jsonl').is_file():
            log({'event': 'error', 'code': 2, 'message': f'{d}/captions.jsonl: missing (npm run data:scenes)'})
            return 2
    meta = json.loads((a.train / 'dataset.json').read_text())
    tj = toks.from_words(meta['vocabulary'])
    vocab = WordVocab.from_tokenizer(tj)
    t0 = time.time()
    train = SceneSplit(a.train, a.image_size, vocab, hard_negatives=not a.no_swap_negatives, workers=os.cpu_count() or 1, log=log, shape_negatives=a.shape_negatives)
    val = SceneSplit(a.val, a.image_size, vocab, workers=os.cpu_count() or 1, log=log)
    longest = max(len(train.cap_tokens.get(j)) for j in range(len(train.cap_tokens)))
    if longest + len(vocab.encode_words(PROMPT)) + 2 > a.max_len:
        log({'event': 'error', 'code': 2, 'message': f'--max-len {a.max_len} is too short for the longest caption ({longest} words + prompt)'})
        return 2
    max_new = longest + 4
    log({'event': 'data', 'train': len(train), 'val': len(val), 'train_captions': len(train.cap_text),
         'hard_negative_captions': int(len(train.neg_tokens)) if train.neg_tokens is not None else 0,
         'vocab': len(vocab), 'longest_caption_words': longest, 'prep_s': round(time.time() - t0, 1)})

    cfg_dict = model_config(a, tj)
    model = build_model(cfg_dict, not a.no_share, a.seed, a.pos_init).to(device)
    if a.init_weights and resume is None:
        err = init_from_weights(model, cfg_dict, a.init_weights, not a.no_share)
        if err:
            log({'event': 'error', 'code': 2, 'message': err})
            return 2
        log({'event': 'init', 'weights': str(a.init_weights)})
    aux = AuxHeads(a.text_width, a.vision_width, relation=a.relation_aux > 0, objects=a.object_aux > 0).to(device) if a.relation_aux > 0 or a.object_aux > 0 else None
    opt = make_optimizer(model, a.lr, a.wd, *([aux] if aux is not None else []))
    batcher = GroupBatcher(train, a.batch, a.seed, flip=a.flip)
    step, state = 0, {'args': {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}, 'total': a.steps, 'evals': [], 'train_s': 0.0, 'evals_s': 0.0}
    if resume is not None:
        model.load_state_dict(resume['model'])
        if aux is not None:
            aux.load_state_dict(resume['aux'])
        if not a.no_share:
            share_text_weights(model)  # load copies values; keep the modules shared
        opt.load_state_dict(resume['opt'])
        torch.set_rng_state(resume['torch_rng'])
        step, state = resume['step'], resume['state']
        log({'event': 'resume', 'step': step, 'total': state['total']})
    n_params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    log({'event': 'config', 'device': device, 'amp_bf16': amp, 'threads': torch.get_num_threads(), 'params': n_params,
         'model': cfg_dict, 'args': state['args']})

    from .evaluate import evaluate

    def run_eval(n, final=False):
        te = time.time()
        res = evaluate(model, val, n, a.max_len, max_new, device=device, amp=amp, i2t_rerank=final, caption_n=n if final else a.eval_caption_n)
        res.update(event='eval', step=step, final=final)
        log(res)
        return res, time.time() - te

    model.train()
    last_ckpt = time.time()
    if a.start_eval and step == 0 and not a.profile:
        res, eval_s = run_eval(a.eval_n)
        state['evals_s'] = eval_s
    seg_time, seg_steps = 0.0, 0
    while True:
        total = state['total']
        if step >= total:
            break
        if a.profile and step >= a.profile:
            break
        if a.budget_min and step % a.log_every == 0 and step >= 100 and state.get('s_per_step'):
            # fit the schedule to the budget from the recent speed: on a machine as fast as planned
            # it never fires and the run is exactly reproducible; on a shared, loaded machine the
            # run is shortened (and lengthened again, up to --steps, when the load goes away)
            evals_left = max(0, a.evals - len(state['evals']))
            left = a.budget_min * 60 - state['train_s'] - state.get('evals_s', 0.0) - evals_left * state.get('eval_s', 60.0)
            new_total = max(step + 50, min(a.steps, planned_total(step, left, state, a.itm_from)))
            if abs(new_total - total) > 0.08 * total:  # hysteresis: the speed of a shared machine is noisy
                log({'event': 'replan', 'step': step, 'old_total': total, 'total': new_total, 's_per_step': round(state['s_per_step'], 3)})
                total = state['total'] = new_total
        lr = lr_at(step, total, a.warmup, a.lr, a.final_lr_ratio)
        for gp in opt.param_groups:
            gp['lr'] = lr
        t_step = time.time()
        b = batcher.batch(step, a.max_len, device)
        gen = torch.Generator().manual_seed(a.seed * 1_000_003 + step)
        itm_on = bool(state.get('itm_on')) or step >= a.itm_from * total  # once on, it stays on when a replan moves the schedule
        if itm_on != state.get('itm_on', itm_on) or (step == 0 and not itm_on):
            log({'event': 'phase', 'step': step, 'itm': itm_on})
            state['recent'] = []  # the speed of the other phase says nothing about this one
        state['itm_on'] = itm_on
        losses, stats = blip_losses(model, b, vocab, gen, amp, device, swap_negatives=not a.no_swap_negatives, itm_balance=not a.no_itm_balance, itm=itm_on, itc_negatives=a.itc_negatives, itm_rows=a.itm_rows, mirror_negatives=a.mirror_negatives, itm_mirror_negatives=a.itm_mirror_negatives,
                                    relation_aux=aux if a.relation_aux > 0 else None, object_aux=aux if a.object_aux > 0 else None)
        loss = a.w_itc * losses['itc'] + a.w_itm * losses['itm'] + a.w_lm * losses['lm']
        if 'rel' in losses:
            loss = loss + a.relation_aux * losses['rel']
        if 'obj' in losses:
            loss = loss + a.object_aux * losses['obj']
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        model.clamp_temp()
        step += 1
        seg_steps += 1
        seg_time += time.time() - t_step  # training steps only: evaluations and checkpoints are counted apart
        if step % a.log_every == 0 or step == 1:
            state['train_s'] += seg_time
            sps = seg_time / max(1, seg_steps)
            seg_time, seg_steps = 0.0, 0
            recent = state.setdefault('recent', [])  # (train_s, step) at the last log points
            recent.append((state['train_s'], step))
            del recent[:-5]
            if len(recent) >= 2:  # speed over the last ~100 steps of this phase
                state['s_per_step'] = (recent[-1][0] - recent[0][0]) / max(1, recent[-1][1] - recent[0][1])
                state['s_itm' if itm_on else 's_no_itm'] = state['s_per_step']
            log({'event': 'step', 'step': step, 'total': total, 'lr': round(lr, 7), 'loss': round(float(loss), 4),
                 **{k: round(float(v), 4) for k, v in losses.items()}, 'temp': round(float(model.temp), 4), 'grad_norm': round(float(gn), 3),
                 **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in stats.items()}, 's_per_step': round(sps, 3),
                 'train_min': round(state['train_s'] / 60, 2), 'eval_min': round(state.get('evals_s', 0.0) / 60, 2), 'wall': time.strftime('%H:%M:%S')})
        if a.evals and step >= (len(state['evals']) + 1) * total / (a.evals + 1) and step < total:
            res, eval_s = run_eval(a.eval_n)
            state['evals'].append(res)
            state['eval_s'], state['evals_s'] = eval_s, state.get('evals_s', 0.0) + eval_s
        if time.time() - last_ckpt > a.ckpt_min * 60:
            t_ck = time.time()
            save_checkpoint(ckpt_path, model, opt, step, state, aux)
            log({'event': 'checkpoint', 'step': step, 'path': str(ckpt_path)})
            state['other_s'] = state.get('other_s', 0.0) + time.time() - t_ck
            last_ckpt = time.time()

    if a.profile:
        return 0
    save_checkpoint(ckpt_path, model, opt, step, state, aux)
    log({'event': 'checkpoint', 'step': step, 'path': str(ckpt_path)})
    model.eval()
    if not a.weights_fp32:
        # Round every weight to a float16 value: the bundle's safetensors are then stored as float16
        # without loss, and the float32 graphs hold exactly the same numbers (parity stays exact).
        with torch.no_grad():
            for p in {id(p): p for p in model.parameters()}.values():
                p.copy_(p.half().float())
    final, _ = run_eval(a.final_eval_n, final=True)
    state['final'] = final
    save_weights(model, cfg_dict, tj, a.run / 'weights')
    if a.out:
        about = {
            'trainedBy': 'models/mira_blip/train.py (npm run train:default)',
            'training': {k: v for k, v in state['args'].items() if k not in ('run', 'out', 'profile', 'threads', 'device')},
            'steps': step, 'trainMinutes': round(state['train_s'] / 60, 1), 'params': n_params,
            'data': {'train': len(train), 'val': len(val), 'trainDataset': meta.get('generator'), 'trainSeed': meta.get('seed')},
            'validation': {k: final[k] for k in final if k not in ('event', 'step', 'final', 'examples')},
            'validationNote': 'Python validation on seed-2 images (mira_blip/evaluate.py, bf16 autocast); the official figures come from npm run eval',
            'weightsFiles': 'float32' if a.weights_fp32 else 'float16 (weights rounded to float16 before export; the float32 graphs hold the same values)',
        }
        caption = {'prompt': PROMPT, 'maxLength': max_new, 'minLength': 1, 'numBeams': 1, 'repetitionPenalty': 1.0}
        export_bundle(a.run / 'weights', a.out, a.name, a.version, a.max_len, caption, about, a.fp16_graphs)
        if not a.weights_fp32:
            for f in sorted((a.out / 'weights').glob('*.safetensors')):
                halve_safetensors(f)
        from .plot import write_curves

        write_curves(a.run / 'log.jsonl', a.out / 'training-curves.svg')
        log({'event': 'export', 'out': str(a.out)})
    log({'event': 'done', 'step': step, 'train_min': round(state['train_s'] / 60, 1)})
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001
        import traceback

        traceback.print_exc(file=sys.stderr)
        print(json.dumps({'event': 'error', 'code': 1, 'message': f'{type(e).__name__}: {e}'}), flush=True)
        sys.exit(1)
