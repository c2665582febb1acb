"""Data pipeline for training Mira's default BLIP on the generated captioned scenes.

Layout of a split folder (written by `npm run data:scenes -- --seed S --n N --out DIR`):
  DIR/dataset.json      {seed, counts, vocabulary, ...}
  DIR/captions.jsonl    {"file", "captions": [...], "scene": {...}, "key": canonical key, "group": id}
  DIR/*.png

What this module does, once per split and size, and caches next to the data (DIR/.cache/):
  - pixels: every PNG opened with PIL, `.convert('RGB')` (alpha dropped, as BLIP's transform and the
    runtime's `alpha: drop`), resized with PIL bicubic straight to S x S (BLIP's `Resize((S, S))`,
    which the runtime reproduces), kept as uint8 [N, 3, S, S] in `pixels-S.npy`. Normalization with
    CLIP's mean/std happens per batch (`normalize`).
  - hard text negatives: for each caption, the captions obtained by swapping two colors, two sizes,
    or flipping one relation word (with `shape_negatives`, also one shape word replaced by another
    shape: the swaps never exchange shapes); each is parsed back with the generator's own parser
    (src/scenes/captions.ts via `scene_keys.ts`) and kept only if it parses to a DIFFERENT scene.

Batches: `GroupBatcher` shuffles contrast groups (scenes one swap apart) as units, so a group's
members land in the same batch and ITC/ITM see those hard pairs in-batch. Every random choice is a
pure function of (seed, epoch) or (seed, step), so a resumed run draws the same batches.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']  # ids 0..4; words follow; then [DEC], [ENC]
PROMPT = 'a picture of '

REPO = Path(__file__).resolve().parents[2]
COLOR_WORDS = ('red', 'green', 'blue', 'yellow', 'purple', 'orange', 'white', 'black')
SIZE_WORDS = ('small', 'large')
SHAPE_WORDS = ('circle', 'square', 'triangle', 'star', 'diamond', 'hexagon')
# What mirroring an image does to its caption's words: left-right (axis 1) and top-bottom (axis 2).
MIRROR_WORDS = ({'left': 'right', 'right': 'left'}, {'above': 'below', 'below': 'above', 'under': 'above'})
REL_FLIP = {**MIRROR_WORDS[0], **MIRROR_WORDS[1]}  # one relation word flipped (swap negatives)


def mirror_key(key: str, horizontal: bool, vertical: bool) -> str:
    """The scene key (src/scenes/scene.ts sceneKey) of the scene mirrored left-right and/or
    top-bottom: facts are normalised to `S <left> O` / `S <above> O`, so a mirror along a fact's
    axis exchanges its two objects; the facts are then sorted again, as sceneKey does."""
    names, _, facts = key.partition('|')
    if not facts:
        return key
    out = []
    for f in facts.split(';'):
        s, rel, o = f.partition(' <left> ') if ' <left> ' in f else f.partition(' <above> ')
        flip = horizontal if rel == ' <left> ' else vertical
        out.append(f'{o}{rel}{s}' if flip else f)
    return f"{names}|{';'.join(sorted(out))}"


MAX_OBJECTS = 3


def object_mentions(caption: str, objects: list[dict]) -> list[tuple[int, int]]:
    """(word index of the shape word, object index) for each object the caption names, in order:
    a shape word preceded by its object's size and color ("a small red circle"), or by its color
    alone where that color and shape name one object of the scene. Pronouns ("above it") are not
    mentions."""
    words = caption.lower().split()
    full = {(o['size'], o['color'], o['shape']): k for k, o in enumerate(objects)}
    pairs: dict[tuple[str, str], list[int]] = {}
    for k, o in enumerate(objects):
        pairs.setdefault((o['color'], o['shape']), []).append(k)
    out = []
    for i, w in enumerate(words):
        if w not in SHAPE_WORDS or i == 0:
            continue
        k = full.get((words[i - 2], words[i - 1], w)) if i >= 2 else None
        if k is None and len(pairs.get((words[i - 1], w), [])) == 1:
            k = pairs[(words[i - 1], w)][0]
        if k is not None:
            out.append((i, k))
    return out


# ------------------------------------------------------------------------------------ tokenizer
class WordVocab:
    """Word-level vocabulary, ids taken from a tokenizer.json built by tokenizers.from_words:
    [PAD]=0 [UNK] [CLS] [SEP] [MASK], the words (then single characters), [DEC], [ENC].

    Captions are lowercase words separated by spaces (the generator emits no punctuation); encode()
    lowercases and splits on whitespace. For such text the exported tokenizer.json (BERT normalizer
    and pre-tokenizer, WordPiece over whole words) gives the same ids."""

    def __init__(self, tokens: list[str]):
        self.tokens = list(tokens)
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.pad, self.unk, self.cls, self.sep, self.mask = (self.ids[t] for t in SPECIALS)
        self.bos = self.ids['[DEC]']
        self.enc = self.ids['[ENC]']

    @classmethod
    def from_tokenizer(cls, tj: dict) -> 'WordVocab':
        ids = dict(tj['model']['vocab'])
        ids.update({t['content']: t['id'] for t in tj.get('added_tokens', [])})
        tokens = ['[UNK]'] * (max(ids.values()) + 1)
        for t, i in ids.items():
            tokens[i] = t
        return cls(tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode_words(self, text: str) -> list[int]:
        return [self.ids.get(w, self.unk) for w in text.lower().split()]

    def decode(self, ids) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i == self.sep:
                break
            if i in (self.pad, self.cls, self.bos, self.enc):
                continue
            out.append(self.tokens[i] if 0 <= i < len(self.tokens) else '[UNK]')
        return ' '.join(out)


# --------------------------------------------------------------------------------------- pixels
def _load_one(args):
    path, size = args
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert('RGB').resize((size, size), Image.BICUBIC)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()


def render_pixels(paths: list[Path], size: int, workers: int = 2) -> np.ndarray:
    """PIL open -> convert('RGB') -> bicubic resize to size x size -> uint8 [N, 3, S, S]."""
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    jobs = [(str(p), size) for p in paths]
    if workers > 1 and len(paths) > 256:
        with ProcessPoolExecutor(workers) as ex:
            for i, arr in enumerate(ex.map(_load_one, jobs, chunksize=256)):
                out[i] = arr
    else:
        for i, j in enumerate(jobs):
            out[i] = _load_one(j)
    return out


def normalize(pixels_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 3, S, S] -> float32 normalized with CLIP's mean/std (values in [0, 1] first)."""
    mean = torch.tensor(CLIP_MEAN, device=pixels_u8.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=pixels_u8.device).view(1, 3, 1, 1)
    return (pixels_u8.float() / 255.0 - mean) / std


# ----------------------------------------------------------------------------- scene keys via TS
def scene_keys(captions: list[str]) -> list[str | None]:
    """Canonical scene key of each caption (None when it does not parse), computed by the
    generator's own parser (src/scenes/captions.ts parseCaption + scene.ts sceneKey)."""
    if not captions:
        return []
    script = Path(__file__).with_name('scene_keys.ts')
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / 'in.json', Path(tmp) / 'out.json'
        src.write_text(json.dumps(captions))
        npx = os.environ.get('MIRA_NPX', 'npx')
        subprocess.run([npx, 'tsx', str(script), str(src), str(dst)], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        return json.loads(dst.read_text())


def swap_candidates(caption: str) -> list[str]:
    """Captions one word-swap away: exchange two different colors, exchange two different sizes,
    or flip one relation word (left<->right, above<->below). The phrasing stays identical, so the
    only difference from the positive is the binding. Validity is checked by the parser later."""
    words = caption.split()
    out: list[str] = []

    def exchange(vocab):
        pos = [i for i, w in enumerate(words) if w in vocab]
        for a in range(len(pos)):
            for b in range(a + 1, len(pos)):
                i, j = pos[a], pos[b]
                if words[i] != words[j]:
                    w = list(words)
                    w[i], w[j] = w[j], w[i]
                    out.append(' '.join(w))

    exchange(COLOR_WORDS)
    exchange(SIZE_WORDS)
    for i, w in enumerate(words):
        if w in REL_FLIP:
            nw = list(words)
            nw[i] = REL_FLIP[w]
            out.append(' '.join(nw))
    return list(dict.fromkeys(out))


def shape_substitutes(caption: str, rng: np.random.Generator, k: int = 1) -> list[str]:
    """Captions with one shape word replaced by another shape, `k` per shape word. Swaps never
    exchange shapes (two objects may not share color and shape, and the generator's contrast
    groups swap colors, sizes and relations), so without these only the LM loss and random
    in-batch pairs would teach ITM and the vision encoder to tell shapes apart."""
    words = caption.split()
    out = []
    for i, w in enumerate(words):
        if w in SHAPE_WORDS:
            choices = [v for v in SHAPE_WORDS if v != w]
            for c in rng.choice(len(choices), size=min(k, len(choices)), replace=False):
                nw = list(words)
                nw[i] = choices[int(c)]
                out.append(' '.join(nw))
    return out


def substitute_candidates(caption: str, rng: np.random.Generator, k: int = 2) -> list[str]:
    """Fallback negatives for captions with no swap (single objects): replace one attribute word."""
    words = caption.split()
    slots = [(i, vocab) for i, w in enumerate(words) for vocab in (COLOR_WORDS, SIZE_WORDS, SHAPE_WORDS) if w in vocab]
    out = []
    for _ in range(k):
        if not slots:
            break
        i, vocab = slots[rng.integers(len(slots))]
        choices = [v for v in vocab if v != words[i]]
        w = list(words)
        w[i] = choices[rng.integers(len(choices))]
        out.append(' '.join(w))
    return list(dict.fromkeys(out))


# ------------------------------------------------------------------------------------- the split
def _file_digest(path: Path) -> str:
    h = hashlib.sha1()
    h.update(path.read_bytes())
    return h.hexdigest()[:16]


@dataclass
class TokenTable:
    """Variable-length word-id sequences stored flat: seq j = ids[off[j]:off[j+1]]."""

    ids: np.ndarray
    off: np.ndarray

    @classmethod
    def build(cls, seqs: list[list[int]]) -> 'TokenTable':
        off = np.zeros(len(seqs) + 1, dtype=np.int64)
        off[1:] = np.cumsum([len(s) for s in seqs])
        ids = np.fromiter((t for s in seqs for t in s), dtype=np.int32, count=int(off[-1]))
        return cls(ids, off)

    def __len__(self):
        return len(self.off) - 1

    def get(self, j: int) -> np.ndarray:
        return self.ids[self.off[j] : self.off[j + 1]]


class SceneSplit:
    """One generated split: pixels (uint8, cached), captions, keys, groups, tokenized text."""

    def __init__(self, root: str | Path, size: int, vocab: WordVocab | None = None, hard_negatives: bool = False, workers: int = 2, log=None, shape_negatives: bool = False):
        self.root = Path(root)
        self.size = size
        log = log or (lambda *a, **k: None)
        meta_path, cap_path = self.root / 'dataset.json', self.root / 'captions.jsonl'
        for p in (meta_path, cap_path):
            if not p.is_file():
                raise FileNotFoundError(f'{p}: missing (generate with npm run data:scenes)')
        self.meta = json.loads(meta_path.read_text())
        rows = [json.loads(l) for l in cap_path.read_text().splitlines() if l.strip()]
        self.files = [r['file'] for r in rows]
        self.captions: list[list[str]] = [list(r['captions']) for r in rows]
        self.scenes = [r.get('scene') for r in rows]
        self.keys = [r['key'] for r in rows]
        self.groups = [r.get('group') for r in rows]
        if vocab is None:
            from .tokenizers import from_words

            vocab = WordVocab.from_tokenizer(from_words(list(self.meta['vocabulary'])))
        self.vocab = vocab
        n = len(rows)

        # keys -> small ints (same int = same scene content)
        kid: dict[str, int] = {}
        self.key_ids = np.array([kid.setdefault(k, len(kid)) for k in self.keys], dtype=np.int64)
        # the key ids of each image mirrored: [none, left-right, top-bottom, both] (for --flip)
        self.mirror_key_ids = np.stack([self.key_ids] + [
            np.array([kid.setdefault(mirror_key(k, h, v), len(kid)) for k in self.keys], dtype=np.int64)
            for h, v in ((True, False), (False, True), (True, True))])

        cache = self.root / '.cache'
        cache.mkdir(exist_ok=True)
        digest = _file_digest(cap_path)
        px_path = cache / f'pixels-{size}-bicubic-{digest}.npy'
        if px_path.is_file():
            self.pixels = np.load(px_path)
        else:
            log({'event': 'prerender', 'split': str(self.root), 'n': n, 'size': size})
            self.pixels = render_pixels([self.root / f for f in self.files], size, workers)
            tmp = px_path.with_suffix('.tmp.npy')
            np.save(tmp, self.pixels)
            os.replace(tmp, px_path)
        assert self.pixels.shape == (n, 3, size, size), self.pixels.shape

        # flat caption table
        self.cap_img = np.array([i for i, cs in enumerate(self.captions) for _ in cs], dtype=np.int64)
        self.cap_text = [c for cs in self.captions for c in cs]
        self.img_cap_off = np.zeros(n + 1, dtype=np.int64)
        self.img_cap_off[1:] = np.cumsum([len(cs) for cs in self.captions])
        self.cap_tokens = TokenTable.build([self.vocab.encode_words(c) for c in self.cap_text])
        # object centres (x right, y down, in [0, 1] of the image) from the layout, NaN where the
        # scene has fewer objects; and per caption its object mentions (word index, object index),
        # -1 where none: the targets of the relation auxiliary loss (train.py --relation-aux)
        self.obj_xy = np.full((n, MAX_OBJECTS, 2), np.nan, dtype=np.float32)
        for i, r in enumerate(rows):
            for k, o in enumerate((r.get('layout') or {}).get('objects', [])[:MAX_OBJECTS]):
                self.obj_xy[i, k] = (o['cx'], o['cy'])
        # and each object's (shape, color, size) as indices into SHAPE_WORDS, COLOR_WORDS,
        # SIZE_WORDS, -1 where none: the targets of the object auxiliary loss (--object-aux)
        self.obj_attr = np.full((n, MAX_OBJECTS, 3), -1, dtype=np.int64)
        for i, scene in enumerate(self.scenes):
            for k, o in enumerate((scene or {}).get('objects', [])[:MAX_OBJECTS]):
                if not np.isnan(self.obj_xy[i, k, 0]):
                    self.obj_attr[i, k] = (SHAPE_WORDS.index(o['shape']), COLOR_WORDS.index(o['color']), SIZE_WORDS.index(o['size']))
        self.mentions = np.full((len(self.cap_text), MAX_OBJECTS, 2), -1, dtype=np.int64)
        for j, c in enumerate(self.cap_text):
            scene = self.scenes[self.cap_img[j]]
            for m, wk in enumerate(object_mentions(c, scene['objects'] if scene else [])[:MAX_OBJECTS]):
                self.mentions[j, m] = wk

        self.neg_tokens: TokenTable | None = None
        self.neg_off: np.ndarray | None = None
        if hard_negatives:
            name = f'hardneg-shapes-{digest}.json' if shape_negatives else f'hardneg-{digest}.json'
            self._build_hard_negatives(cache / name, log, shape_negatives)

    # -- hard text negatives ---------------------------------------------------------------------
    def _build_hard_negatives(self, path: Path, log, shape_negatives: bool = False) -> None:
        if path.is_file():
            per_caption = json.loads(path.read_text())
        else:
            rng = np.random.default_rng(0)
            cands = [swap_candidates(c) for c in self.cap_text]
            for j, c in enumerate(cands):
                if not c:
                    cands[j] = substitute_candidates(self.cap_text[j], rng)
                if shape_negatives:
                    cands[j] = list(dict.fromkeys(cands[j] + shape_substitutes(self.cap_text[j], rng)))
            flat = [c for cs in cands for c in cs]
            log({'event': 'hard_negatives', 'captions': len(self.cap_text), 'candidates': len(flat)})
            keys = scene_keys(flat)
            per_caption, k = [], 0
            for j, cs in enumerate(cands):
                own = self.keys[self.cap_img[j]]
                keep = [c for c, key in zip(cs, keys[k : k + len(cs)]) if key is not None and key != own]
                k += len(cs)
                per_caption.append(keep)
            tmp = path.with_suffix('.tmp')
            tmp.write_text(json.dumps(per_caption))
            os.replace(tmp, path)
        seqs, off = [], [0]
        for cs in per_caption:
            seqs.extend(self.vocab.encode_words(c) for c in cs)
            off.append(len(seqs))
        self.neg_tokens = TokenTable.build(seqs)
        self.neg_off = np.array(off, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.files)

    # -- group units for batching ----------------------------------------------------------------
    def units(self) -> list[np.ndarray]:
        """Index lists that should share a batch: members of one contrast group (and same-key
        duplicates, which the generator puts in the same group). Ungrouped images are singletons."""
        by: dict[object, list[int]] = {}
        order: list[object] = []
        for i, g in enumerate(self.groups):
            u = ('g', g) if g is not None else ('i', i)
            if u not in by:
                by[u] = []
                order.append(u)
            by[u].append(i)
        return [np.array(by[u], dtype=np.int64) for u in order]


# -------------------------------------------------------------------------------------- batches
def pad_batch(seqs: list[np.ndarray], first: int, sep: int, max_len: int, prefix: list[int] | None = None):
    """[first] + prefix + words + [SEP], cut to max_len (SEP kept), padded with 0 to the longest."""
    prefix = prefix or []
    rows = []
    for s in seqs:
        body = list(prefix) + [int(t) for t in s]
        body = body[: max_len - 2]
        rows.append([first] + body + [sep])
    t = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), t, dtype=torch.long)
    mask = torch.zeros(len(rows), t, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


class GroupBatcher:
    """Epochs over contrast-group units: unit order is a permutation drawn from (seed, epoch); the
    flat index list is cut into batches of `batch_size`, so group members share a batch (a unit is
    split only where it straddles a batch boundary). Step s maps to (epoch, batch) deterministically."""

    def __init__(self, split: SceneSplit, batch_size: int, seed: int, flip: float = 0.0):
        self.split, self.bs, self.seed, self.flip = split, batch_size, seed, flip
        v = split.vocab
        # word-id maps of the two mirrors (identity elsewhere), for the captions of flipped images,
        # and the relation word ids of each axis (which mirror turns a caption into a negative)
        self.mirror_maps, self.axis_words = [], []
        for words in MIRROR_WORDS:
            m = np.arange(len(v), dtype=np.int64)
            for a, b in words.items():
                if a in v.ids and b in v.ids:
                    m[v.ids[a]] = v.ids[b]
            self.mirror_maps.append(m)
            self.axis_words.append({v.ids[w] for w in words if w in v.ids})
        self.units = split.units()
        self.per_epoch = len(split) // batch_size
        self._epoch, self._order = None, None

    def indices(self, step: int) -> np.ndarray:
        epoch, b = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, 1, epoch])
            perm = rng.permutation(len(self.units))
            self._order = np.concatenate([self.units[u] for u in perm])
            self._epoch = epoch
        return self._order[b * self.bs : (b + 1) * self.bs]

    def batch(self, step: int, max_len: int, device='cpu') -> dict[str, torch.Tensor]:
        """Images, one random caption each, a hard text negative per caption (if the split has
        them), ids for ITC ([CLS]...), ITM ([ENC]...) and LM ([DEC] a picture of ...).
        With `flip` > 0 each image is mirrored left-right with that probability and, independently,
        top-bottom; its caption and negative get the mirrored relation words and its scene key the
        mirrored scene's, so every flipped pair is again a true pair (and a flipped image whose
        mirror scene is elsewhere in the batch is that image's positive, as BLIP's idx rule wants)."""
        sp, v = self.split, self.split.vocab
        idx = self.indices(step)
        rng = np.random.default_rng([self.seed, 2, step])
        lo, hi = sp.img_cap_off[idx], sp.img_cap_off[idx + 1]
        cap = lo + (rng.random(len(idx)) * (hi - lo)).astype(np.int64)
        words = [sp.cap_tokens.get(j) for j in cap]
        # [left-right, top-bottom] per row; all False (nothing mirrored) when flip is 0
        fl = np.random.default_rng([self.seed, 3, step]).random((2, len(idx))) < self.flip
        pixels = sp.pixels[idx]  # a copy (fancy indexing): mirrored rows never touch the cache
        pixels[fl[0]] = pixels[fl[0]][..., ::-1]
        pixels[fl[1]] = pixels[fl[1]][..., ::-1, :]
        keys = sp.mirror_key_ids[fl[0] * 1 + fl[1] * 2, idx]
        words = [self._mirror_words(ws, fl[0, r], fl[1, r]) for r, ws in enumerate(words)]
        ids, mask = pad_batch(words, v.cls, v.sep, max_len)
        prompt = v.encode_words(PROMPT)
        lm_ids, lm_mask = pad_batch(words, v.bos, v.sep, max_len, prefix=prompt)
        labels = lm_ids.masked_fill(lm_mask == 0, -100)
        labels[:, : 1 + len(prompt)] = -100  # BLIP masks [DEC] + the prompt; loss on caption + [SEP]
        # mirror: 1 = left-right (the caption names a left/right relation), 2 = top-bottom (only an
        # above/below one), 0 = neither. Mirroring the image flips exactly those relations.
        horiz, vert = self.axis_words
        mirror = [1 if horiz & set(map(int, ws)) else 2 if vert & set(map(int, ws)) else 0 for ws in words]
        # every object's centre in the image as shown (mirrored rows mirrored) and its attributes,
        # for the object auxiliary loss
        obj_xy = sp.obj_xy[idx].copy()  # [B, 3, 2]
        obj_xy[..., 0] = np.where(fl[0][:, None], 1.0 - obj_xy[..., 0], obj_xy[..., 0])
        obj_xy[..., 1] = np.where(fl[1][:, None], 1.0 - obj_xy[..., 1], obj_xy[..., 1])
        # the named objects: token index of each mention ([CLS]/[ENC] is token 0) and the centre of
        # the object it names, for the relation auxiliary loss
        men = sp.mentions[cap]  # [B, 3, (word, object)]
        xy = obj_xy[np.arange(len(idx))[:, None], np.maximum(men[..., 1], 0)]  # [B, 3, 2], a copy
        named = men[..., 0] >= 0  # train.py checks that no caption is cut at max_len
        xy[~named] = np.nan
        out = {
            'obj_xy': torch.from_numpy(np.ascontiguousarray(obj_xy)),
            'obj_attr': torch.from_numpy(sp.obj_attr[idx]),
            'mention_tok': torch.from_numpy(np.where(named, men[..., 0] + 1, 0)),
            'mention_xy': torch.from_numpy(np.ascontiguousarray(xy, dtype=np.float32)),
            'mirror': torch.tensor(mirror, dtype=torch.long),
            'index': torch.from_numpy(idx.copy()),
            'pixels': torch.from_numpy(np.ascontiguousarray(pixels)),
            'key': torch.from_numpy(np.ascontiguousarray(keys)),
            'ids': ids,
            'mask': mask,
            'lm_ids': lm_ids,
            'lm_mask': lm_mask,
            'lm_labels': labels,
        }
        if sp.neg_tokens is not None:
            has, negs = [], []
            for r, j in enumerate(cap):
                a, b = sp.neg_off[j], sp.neg_off[j + 1]
                if b > a:
                    has.append(r)
                    negs.append(self._mirror_words(sp.neg_tokens.get(int(a + rng.integers(b - a))), fl[0, r], fl[1, r]))
            if negs:
                nid, nmask = pad_batch(negs, v.enc, v.sep, max_len)
                out.update(neg_rows=torch.tensor(has, dtype=torch.long), neg_ids=nid, neg_mask=nmask)
        return {k: t.to(device) for k, t in out.items()}

    def _mirror_words(self, ws: np.ndarray, horizontal: bool, vertical: bool) -> np.ndarray:
        if horizontal:
            ws = self.mirror_maps[0][ws]
        if vertical:
            ws = self.mirror_maps[1][ws]
        return ws
