"""Fine-tune a Mira BLIP bundle on image-caption pairs and write a new version of it.

    cd models && /usr/bin/python3 -m mira_blip.finetune --bundle default --pairs pairs.jsonl \\
        --images-root /data/photos --out /tmp/default-v2 [--steps 200] [--holdout 0.1] [--seed 0] \\
        [--device auto|cpu|cuda] [--batch 32] [--lr 5e-5] [--version V] [--overwrite]

pairs.jsonl: one JSON object per line, {"image": "relative/or/absolute.png", "caption": "..."}
("file" is accepted for "image"; "captions": [...] for several captions of one image).

Continues from the bundle's weights/*.safetensors (Hugging Face names) with BLIP's objectives:
ITC (same image = positive), ITM with hard negatives mined from the in-batch ITC similarities, and
LM (prompt from the manifest) when the bundle's retrieval and captioning checkpoints share one vision
encoder (Mira's default model). When they differ (Salesforce's separate checkpoints) only the
retrieval model is trained and the captioning weights are carried over unchanged.

A held-out split of the images (--holdout, by image, seeded) is scored before and after: text->image
R@1 with ITC alone and with ITM re-rank of the ITC top-16 (score = ITM match logit + ITC cosine),
a hit being the caption's own image. NEWDIR gets the new bundle (same name, new version) and
report.json.

stdout: JSON lines {"event": "start"|"eval"|"step"|"export"|"done"|"error", ...}.
Exit codes: 0 success; 2 bad arguments or input (one line naming the file or field);
3 torch / numpy / PIL missing; 1 any other failure.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

TORCH_HINT = 'install with `apt-get install python3-torch python3-numpy python3-pil` (Debian) and run with MIRA_PYTHON=/usr/bin/python3'


def emit(obj: dict) -> None:
    print(json.dumps(obj, separators=(',', ':')), flush=True)


class InputError(Exception):
    """Bad arguments or input: exit code 2, the message names the file or field."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage on several lines)
        raise InputError(f'arguments: {message}')


def parse_args(argv=None):
    ap = _Parser(prog='python -m mira_blip.finetune', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--bundle', type=Path, required=True, help='bundle folder with manifest.json and weights/*.safetensors')
    ap.add_argument('--pairs', type=Path, required=True, help='JSONL of {"image", "caption"}')
    ap.add_argument('--images-root', type=Path, required=True, help='folder that relative image paths are resolved against')
    ap.add_argument('--out', type=Path, required=True, help='folder for the new bundle version')
    ap.add_argument('--steps', type=int, default=200)
    ap.add_argument('--holdout', type=float, default=0.1, help='fraction of images held out for the before/after R@1 (0: none)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'])
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--lr', type=float, default=5e-5)
    ap.add_argument('--wd', type=float, default=0.05)
    ap.add_argument('--warmup', type=float, default=0.1, help='fraction of the steps')
    ap.add_argument('--version', help='version of the new bundle (default: the old one incremented)')
    ap.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: all cores)')
    ap.add_argument('--amp', choices=['auto', 'bf16', 'off'], default='auto')
    ap.add_argument('--k', type=int, default=16, help='ITC candidates re-ranked by ITM in the held-out score')
    ap.add_argument('--overwrite', action='store_true', help='replace an existing bundle in --out')
    a = ap.parse_args(argv)
    if a.steps < 0:
        raise InputError('--steps: must be >= 0')
    if not 0 <= a.holdout < 1:
        raise InputError('--holdout: must be in [0, 1)')
    if a.batch < 2:
        raise InputError('--batch: must be >= 2')
    if a.lr <= 0:
        raise InputError('--lr: must be > 0')
    return a


# ----------------------------------------------------------------------------------- tokenizer
def _is_punct(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith('P')


class WordPiece:
    """The subset of Hugging Face tokenizers that BLIP's tokenizer.json uses: BertNormalizer
    (clean text, CJK spacing, lowercase, accents stripped when lowercasing unless told otherwise),
    BertPreTokenizer (whitespace and punctuation), WordPiece (greedy longest match, '##')."""

    def __init__(self, tj: dict, source: str):
        model = tj.get('model') or {}
        if model.get('type') != 'WordPiece':
            raise InputError(f'{source}: model.type must be WordPiece (got {model.get("type")!r})')
        self.vocab: dict[str, int] = dict(model['vocab'])
        for t in tj.get('added_tokens', []):
            self.vocab.setdefault(t['content'], t['id'])
        self.unk = self.vocab.get(model.get('unk_token', '[UNK]'), 1)
        self.prefix = model.get('continuing_subword_prefix', '##')
        self.max_chars = model.get('max_input_chars_per_word', 100)
        norm = tj.get('normalizer') or {}
        self.lower = bool(norm.get('lowercase', True))
        sa = norm.get('strip_accents')
        self.strip_accents = self.lower if sa is None else bool(sa)
        self.cjk = bool(norm.get('handle_chinese_chars', True))

    def _normalize(self, text: str) -> str:
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith('C') and ch not in '\t\n\r'):
                continue
            if ch.isspace():
                out.append(' ')
            elif self.cjk and (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0xF900 <= cp <= 0xFAFF):
                out.append(f' {ch} ')
            else:
                out.append(ch)
        text = ''.join(out)
        if self.lower:
            text = text.lower()
        if self.strip_accents:
            text = ''.join(c for c in unicodedata.normalize('NFD', text) if unicodedata.category(c) != 'Mn')
        return text

    def _words(self, text: str) -> list[str]:
        words = []
        for chunk in text.split():
            cur = ''
            for ch in chunk:
                if _is_punct(ch):
                    if cur:
                        words.append(cur)
                    words.append(ch)
                    cur = ''
                else:
                    cur += ch
            if cur:
                words.append(cur)
        return words

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for w in self._words(self._normalize(text)):
            if len(w) > self.max_chars:
                ids.append(self.unk)
                continue
            pieces, start = [], 0
            while start < len(w):
                end, found = len(w), None
                while start < end:
                    sub = (self.prefix if start else '') + w[start:end]
                    if sub in self.vocab:
                        found = self.vocab[sub]
                        break
                    end -= 1
                if found is None:
                    pieces = [self.unk]
                    break
                pieces.append(found)
                start = end
            ids.extend(pieces)
        return ids


# ---------------------------------------------------------------------------------------- input
def read_pairs(path: Path, root: Path) -> list[tuple[Path, str]]:
    if not path.is_file():
        raise InputError(f'{path}: no such file')
    pairs = []
    for n, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f'{path}:{n}: not JSON ({e.msg})') from None
        if not isinstance(row, dict):
            raise InputError(f'{path}:{n}: expected an object')
        img = row.get('image', row.get('file'))
        if not isinstance(img, str) or not img:
            raise InputError(f'{path}:{n}: field "image" must be a non-empty string')
        caps = row.get('captions', [row['caption']] if 'caption' in row else None)
        if isinstance(caps, str):
            caps = [caps]
        if not caps or not all(isinstance(c, str) and c.strip() for c in caps):
            raise InputError(f'{path}:{n}: field "caption" must be a non-empty string (or "captions" a list of them)')
        p = Path(img) if Path(img).is_absolute() else root / img
        if not p.is_file():
            raise InputError(f'{path}:{n}: field "image": {p} not found')
        pairs.extend((p, c.strip()) for c in caps)
    if not pairs:
        raise InputError(f'{path}: no pairs')
    return pairs


def load_pixels(paths: list[Path], pre: dict):
    """The manifest's preprocessing (resize squash|shortest-crop, kernel, alpha), uint8 [N,3,S,S]."""
    import numpy as np
    from PIL import Image

    kernels = {'bicubic': Image.BICUBIC, 'bilinear': Image.BILINEAR, 'nearest': Image.NEAREST, 'lanczos3': Image.LANCZOS}
    s, kernel = int(pre['size']), kernels[pre.get('kernel', 'bicubic')]
    alpha = pre.get('alpha', {'mode': 'drop'})
    out = np.empty((len(paths), 3, s, s), dtype=np.uint8)
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as im:
                im.load()
                if alpha.get('mode') == 'flatten' and im.mode in ('RGBA', 'LA', 'P'):
                    rgba = im.convert('RGBA')
                    bg = Image.new('RGBA', rgba.size, tuple(alpha.get('background', [255, 255, 255])) + (255,))
                    im = Image.alpha_composite(bg, rgba).convert('RGB')
                else:
                    im = im.convert('RGB')
        except Exception as e:  # noqa: BLE001
            raise InputError(f'{p}: not a readable image ({e})') from None
        if pre.get('resize', 'squash') == 'squash':
            im = im.resize((s, s), kernel)
        else:
            w, h = im.size
            r = s / min(w, h)
            im = im.resize((max(s, round(w * r)), max(s, round(h * r))), kernel)
            w, h = im.size
            left, top = (w - s) // 2, (h - s) // 2
            im = im.crop((left, top, left + s, top + s))
        out[i] = np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    return out


def next_version(v: str) -> str:
    m = re.search(r'(\d+)$', v)
    return v[: m.start()] + str(int(m.group(1)) + 1) if m else v + '.1'


# ----------------------------------------------------------------------------------------- run
def main(argv=None) -> int:
    t_start = time.time()
    a = parse_args(argv)
    import os

    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')  # see train.py
    try:
        import numpy as np
        import torch
        import PIL  # noqa: F401
    except ImportError as e:
        emit({'event': 'error', 'code': 3, 'message': f'{e}: {TORCH_HINT}'})
        return 3
    import torch.nn.functional as F

    from . import export as exporter
    from .modeling import BlipForTraining, config_from_dict, load_hf_weights
    from .safetensors_io import load_state_dict
    from .train import amp_layernorms, autocast, blip_losses, cpu_has_bf16, export_bundle, halve_safetensors, lr_at, make_optimizer, save_weights

    # ---- the bundle
    mpath = a.bundle / 'manifest.json'
    if not mpath.is_file():
        raise InputError(f'{mpath}: no such file (--bundle must be a bundle folder)')
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f'{mpath}: not JSON ({e.msg})') from None
    if manifest.get('family') != 'blip':
        raise InputError(f'{mpath}: field "family" must be "blip" to fine-tune (got {manifest.get("family")!r})')
    weights = manifest.get('weights') or {}
    for role in ('retrieval', 'captioning'):
        if role not in weights:
            raise InputError(f'{mpath}: field "weights.{role}" missing (the bundle carries no fine-tunable weights)')
        if not (a.bundle / weights[role]).is_file():
            raise InputError(f'{a.bundle / weights[role]}: no such file (manifest weights.{role})')
    cfg_path = a.bundle / 'weights' / 'config.json'
    if not cfg_path.is_file():
        raise InputError(f'{cfg_path}: no such file (the model configuration of the weights)')
    tok_path = a.bundle / manifest['tokenizer']['file']
    if not tok_path.is_file():
        raise InputError(f'{tok_path}: no such file (manifest tokenizer.file)')
    if a.out.resolve() == a.bundle.resolve():
        raise InputError('--out: must differ from --bundle (a new version goes to a new folder)')
    if (a.out / 'manifest.json').exists() and not a.overwrite:
        raise InputError(f'{a.out}: already holds a bundle (pass --overwrite to replace it)')
    pairs = read_pairs(a.pairs, a.images_root)

    cfg_dict = json.loads(cfg_path.read_text())
    cfg = config_from_dict(cfg_dict)
    tj = json.loads(tok_path.read_text(encoding='utf-8'))
    tok = WordPiece(tj, str(tok_path))
    special = manifest['tokenizer']['specialTokens']
    max_len = int(manifest['tokenizer']['maxLength'])
    prompt = (manifest.get('caption') or {}).get('prompt', 'a picture of ')
    pre = manifest['preprocess']
    if int(pre['size']) != cfg.vision.image_size:
        raise InputError(f'{mpath}: preprocess.size {pre["size"]} differs from weights/config.json image_size {cfg.vision.image_size}')

    device = ('cuda' if torch.cuda.is_available() else 'cpu') if a.device == 'auto' else a.device
    if device == 'cuda' and not torch.cuda.is_available():
        raise InputError('--device: cuda requested but torch sees no CUDA device')
    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    amp = {'bf16': True, 'off': False}.get(a.amp, torch.cuda.is_bf16_supported() if device == 'cuda' else cpu_has_bf16())

    raw = load_state_dict(a.bundle / weights['retrieval'])
    weights_fp16 = any(v.dtype == torch.float16 for v in raw.values())  # keep the bundle's storage precision
    rsd, csd = load_hf_weights(raw), load_hf_weights(a.bundle / weights['captioning'])
    shared_vision = exporter.same_vision(rsd, csd)
    model = BlipForTraining(cfg, temp=float(cfg_dict.get('itc_temp', 0.07)))
    try:
        model.load_hf_state_dicts(rsd, csd, vision_from='retrieval')
    except RuntimeError as e:
        raise InputError(f'{a.bundle / weights["retrieval"]}: weights do not match weights/config.json ({e})') from None
    amp_layernorms(model)
    model.to(device)

    # ---- data: distinct images, a held-out split by image
    img_paths = sorted({p for p, _ in pairs}, key=str)
    img_index = {p: i for i, p in enumerate(img_paths)}
    cap_img = np.array([img_index[p] for p, _ in pairs], dtype=np.int64)
    cap_ids = [tok.encode(c) for _, c in pairs]
    pixels = load_pixels(img_paths, pre)
    mean = torch.tensor(pre['mean'], dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(pre['std'], dtype=torch.float32).view(1, 3, 1, 1)
    norm = lambda u8: ((torch.from_numpy(u8).float() / 255.0 - mean) / std).to(device)  # noqa: E731
    rng = np.random.default_rng([a.seed, 7])
    perm = rng.permutation(len(img_paths))
    n_hold = int(round(a.holdout * len(img_paths))) if a.holdout > 0 else 0
    if a.holdout > 0 and len(img_paths) >= 4:
        n_hold = max(2, n_hold)
    hold_imgs = set(perm[:n_hold].tolist())
    train_caps = np.array([j for j in range(len(pairs)) if cap_img[j] not in hold_imgs], dtype=np.int64)
    hold_caps = np.array([j for j in range(len(pairs)) if cap_img[j] in hold_imgs], dtype=np.int64)
    if len(train_caps) < 2 and a.steps > 0:
        raise InputError(f'{a.pairs}: too few pairs to train after holding out {n_hold} images')
    emit({'event': 'start', 'bundle': str(a.bundle), 'name': manifest['name'], 'from_version': manifest['version'], 'pairs': len(pairs),
          'images': len(img_paths), 'train_pairs': int(len(train_caps)), 'holdout_pairs': int(len(hold_caps)), 'holdout_images': n_hold,
          'objectives': ['itc', 'itm'] + (['lm'] if shared_vision else []), 'device': device, 'amp_bf16': amp, 'steps': a.steps})

    def pad(seqs, first):
        rows = [[first] + list(s)[: max_len - 2] + [special['eos']] for s in seqs]
        t = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), t, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return ids.to(device), mask.to(device)

    @torch.no_grad()
    def holdout_scores() -> dict | None:
        if len(hold_caps) == 0:
            return None
        model.eval()
        imgs = sorted({int(cap_img[j]) for j in hold_caps})
        pos = {g: i for i, g in enumerate(imgs)}
        embeds, feats = [], []
        for s in range(0, len(imgs), 64):
            with autocast(device, amp):
                e = model.image_embeds(norm(pixels[imgs[s : s + 64]]))
                f = model.image_feat(e)
            embeds.append(e.float())
            feats.append(f.float())
        embeds, ifeat = torch.cat(embeds), F.normalize(torch.cat(feats), dim=-1)
        tf = []
        for s in range(0, len(hold_caps), 128):
            ids, mask = pad([cap_ids[j] for j in hold_caps[s : s + 128]], special['cls'])
            with autocast(device, amp):
                tf.append(model.text_feat(ids, mask).float())
        sim = F.normalize(torch.cat(tf), dim=-1) @ ifeat.t()
        truth = torch.tensor([pos[int(cap_img[j])] for j in hold_caps], device=sim.device)
        k = min(a.k, len(imgs))
        top = sim.topk(k, dim=1).indices
        itm = torch.empty(top.shape, device=sim.device)
        for q in range(len(hold_caps)):
            ids, mask = pad([cap_ids[hold_caps[q]]] * k, special['enc'])
            with autocast(device, amp):
                itm[q] = model.itm_logits(ids, mask, embeds[top[q]])[:, 1].float()
        rr = torch.gather(top, 1, (itm + torch.gather(sim, 1, top)).argmax(1, keepdim=True))[:, 0]
        model.train()
        return {'t2i_itc_r1': round(float((top[:, 0] == truth).float().mean()), 4), 't2i_rerank_r1': round(float((rr == truth).float().mean()), 4),
                'queries': int(len(hold_caps)), 'images': len(imgs), 'k': k}

    before = holdout_scores()
    emit({'event': 'eval', 'when': 'before', **(before or {'skipped': 'no held-out images'})})

    # ---- training
    prompt_ids = tok.encode(prompt)
    enc_vocab = type('V', (), {'enc': special['enc']})()
    opt = make_optimizer(model, a.lr, a.wd)
    warm = max(1, int(a.warmup * a.steps))
    model.train()
    t0 = time.time()
    for step in range(a.steps):
        r = np.random.default_rng([a.seed, 8, step])
        batch = train_caps[r.choice(len(train_caps), size=min(a.batch, len(train_caps)), replace=False)]
        imgs = cap_img[batch]
        ids, mask = pad([cap_ids[j] for j in batch], special['cls'])
        lm_ids, lm_mask = pad([prompt_ids + cap_ids[j] for j in batch], special['bos'])
        labels = lm_ids.masked_fill(lm_mask == 0, -100)
        labels[:, : 1 + len(prompt_ids)] = -100
        b = {'pixel_values': norm(pixels[imgs]), 'key': torch.from_numpy(imgs).to(device), 'ids': ids, 'mask': mask,
             'lm_ids': lm_ids, 'lm_mask': lm_mask, 'lm_labels': labels}
        lr = lr_at(step, a.steps, warm, a.lr, 0.0)
        for g in opt.param_groups:
            g['lr'] = lr
        gen = torch.Generator().manual_seed(a.seed * 1_000_003 + step)
        losses, _ = blip_losses(model, b, enc_vocab, gen, amp, device, swap_negatives=False, lm=shared_vision)
        loss = losses['itc'] + losses['itm'] + losses['lm']
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        model.clamp_temp()
        if (step + 1) % 10 == 0 or step + 1 == a.steps:
            emit({'event': 'step', 'step': step + 1, 'total': a.steps, 'lr': round(lr, 8), 'loss': round(float(loss), 4),
                  **{k: round(float(v), 4) for k, v in losses.items()}, 's_per_step': round((time.time() - t0) / (step + 1), 3)})

    after = holdout_scores()
    emit({'event': 'eval', 'when': 'after', **(after or {'skipped': 'no held-out images'})})

    # ---- the new bundle version
    model.eval()
    if weights_fp16:  # round to float16 values so the float16 files and the float32 graphs agree exactly
        with torch.no_grad():
            for p in {id(p): p for p in model.parameters()}.values():
                p.copy_(p.half().float())
    version = a.version or next_version(str(manifest['version']))
    with tempfile.TemporaryDirectory() as tmp:
        wdir = Path(tmp)
        save_weights(model, cfg_dict, tj, wdir)
        if not shared_vision:  # captioning was not trained: keep its weights (and vision) as they were
            from .safetensors_io import save_file

            save_file(csd, wdir / 'captioning.safetensors', {'format': 'pt', 'trained_by': 'unchanged by mira_blip.finetune'})
        if a.out.exists() and a.overwrite:
            shutil.rmtree(a.out)
        about = dict(manifest.get('about') or {})
        about['fineTuned'] = {
            'from': f'{manifest["name"]}@{manifest["version"]}', 'pairs': str(a.pairs), 'pairCount': len(pairs), 'steps': a.steps,
            'lr': a.lr, 'batch': a.batch, 'seed': a.seed, 'holdout': a.holdout, 'objectives': ['itc', 'itm'] + (['lm'] if shared_vision else []),
            'holdoutBefore': before, 'holdoutAfter': after,
        }
        caption = manifest.get('caption') or {'prompt': prompt, 'maxLength': 20, 'minLength': 1, 'numBeams': 1, 'repetitionPenalty': 1.0}
        fp16 = str((manifest.get('about') or {}).get('weightsDtype', '')).startswith('float16')
        export_bundle(wdir, a.out, manifest['name'], version, max_len, caption, about, fp16=fp16)
        if weights_fp16:
            for f in sorted((a.out / 'weights').glob('*.safetensors')):
                halve_safetensors(f)
    emit({'event': 'export', 'out': str(a.out), 'name': manifest['name'], 'version': version})
    report = {'bundle': str(a.bundle), 'out': str(a.out), 'name': manifest['name'], 'fromVersion': manifest['version'], 'version': version,
              'pairs': len(pairs), 'images': len(img_paths), 'trainPairs': int(len(train_caps)), 'holdoutPairs': int(len(hold_caps)),
              'steps': a.steps, 'objectives': about['fineTuned']['objectives'], 'before': before, 'after': after,
              'seconds': round(time.time() - t_start, 1)}
    (a.out / 'report.json').write_text(json.dumps(report, indent=2) + '\n')
    emit({'event': 'done', 'report': str(a.out / 'report.json'), 'before': before, 'after': after})
    return 0


def run(argv=None) -> int:
    try:
        return main(argv)
    except InputError as e:
        emit({'event': 'error', 'code': 2, 'message': str(e)})
        return 2
    except Exception as e:  # noqa: BLE001
        import traceback

        traceback.print_exc(file=sys.stderr)
        emit({'event': 'error', 'code': 1, 'message': f'{type(e).__name__}: {e}'})
        return 1


if __name__ == '__main__':
    sys.exit(run())
