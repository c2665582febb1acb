"""Compare an exported bundle's ONNX graphs (run by onnxruntime-node) with PyTorch. Exports nothing.

    cd models && /usr/bin/python3 -m mira_blip.parity_check --bundle DIR [--ref /work/shared/reference/blip-parity]

PyTorch side: the bundle's own weights/*.safetensors and weights/config.json (so the copied weights
are checked too). Inputs: --ref's inputs.json, else seeded random ones. With --ref, onnxruntime's
outputs are also compared with the reference expected.json (Salesforce BLIP's numbers).

Pass criteria: ITC feature cosine (ORT vs PyTorch) >= 0.9999, |delta ITM logit| <= 1e-3, identical
greedy ids; plus a shape sweep over batch 1..8 and sequence lengths other than the trace length (7).
Also validates manifest.json with the runtime's zod schema and loads tokenizer.json with
@huggingface/tokenizers. Needs node and /work/main/node_modules (onnxruntime-node, tsx).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .modeling import BlipCaptioning, BlipRetrieval, load_config
from .safetensors_io import load_file

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
NODE = os.environ.get('MIRA_NODE', 'node')


# ------------------------------------------------------------------------- onnxruntime bridge
class OrtJobs:
    """Collects graph runs, executes them all in one node process (ort_check.mjs), returns outputs."""

    def __init__(self):
        self.jobs: list[dict] = []
        self.blob = bytearray()

    def _feed(self, x) -> dict:
        if isinstance(x, tuple):  # ('from', job, output)
            return {'from': [x[1], x[2]]}
        arr = np.ascontiguousarray(x.numpy() if isinstance(x, torch.Tensor) else x)
        arr = arr.astype('<i8' if arr.dtype.kind in 'iu' else '<f4')
        entry = {'type': 'int64' if arr.dtype.kind == 'i' else 'float32', 'dims': list(arr.shape), 'offset': len(self.blob)}
        self.blob += arr.tobytes()
        return entry

    def add(self, graph: Path, feeds: dict, greedy: dict | None = None) -> int:
        job = {'graph': str(graph), 'feeds': {k: self._feed(v) for k, v in feeds.items()}}
        if greedy:
            job['greedy'] = greedy
        self.jobs.append(job)
        return len(self.jobs) - 1

    def run(self) -> list[dict]:
        with tempfile.TemporaryDirectory() as tmp:
            jobs, out = Path(tmp) / 'jobs.json', Path(tmp) / 'out.json'
            jobs.write_text(json.dumps({'jobs': self.jobs}))
            Path(f'{jobs}.bin').write_bytes(bytes(self.blob))
            subprocess.run([NODE, str(HERE / 'ort_check.mjs'), str(jobs), str(out)], check=True)
            res = json.loads(out.read_text())['results']
            raw = Path(f'{out}.bin').read_bytes()
        for r in res:
            for name, e in r['outputs'].items():
                dt = '<i8' if e['type'] == 'int64' else '<f4'
                n = int(np.prod(e['dims']))
                r['outputs'][name] = np.frombuffer(raw, dtype=dt, count=n, offset=e['offset']).reshape(e['dims'])
        return res


def node_check(script: str, *args: str, tsx: bool = False) -> str:
    cmd = [NODE] + (['--import', 'tsx'] if tsx else []) + [str(HERE / script), *args]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f'{script} failed:\n{p.stdout}{p.stderr}')
    return p.stdout.strip()


# ------------------------------------------------------------------------------------ checks
class Report:
    def __init__(self):
        self.ok = True

    def value(self, name: str, got: float, limit: float, higher_is_better: bool = False) -> None:
        good = got >= limit if higher_is_better else got <= limit
        self.ok &= bool(good)
        rel = '>=' if higher_is_better else '<='
        shown = f'{got:.8f}' if higher_is_better else f'{got:.3e}'  # cosines: show the digits near 1
        print(f'  {name:44s} {shown:>10s}  ({rel} {limit:g}) {"ok" if good else "FAIL"}')

    def flag(self, name: str, good: bool, detail: str = '') -> None:
        self.ok &= bool(good)
        print(f'  {name:44s} {"ok" if good else "FAIL"} {detail}')


def cos_min(a, b) -> float:
    a, b = torch.tensor(np.asarray(a, dtype=np.float64)), torch.tensor(np.asarray(b, dtype=np.float64))
    return float(F.cosine_similarity(a, b, dim=-1).min())


def maxdiff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def random_inputs(cfg, special, rng: torch.Generator) -> dict:
    s = cfg.vision.image_size
    ids = torch.randint(5, min(2000, cfg.text.vocab_size), (3, 9), generator=rng)  # within small vocabularies too
    ids[:, 0] = special['cls']
    mask = torch.ones_like(ids)
    for r, n in enumerate((5, 9, 3)):  # padded rows, as a batch from the tokenizer looks
        ids[r, n - 1] = special['eos']
        ids[r, n:] = special['pad']
        mask[r, n:] = 0
    return {'pixel_values': torch.randn(3, 3, s, s, generator=rng).tolist(), 'input_ids': ids.tolist(),
            'attention_mask': mask.tolist(), 'decoder_prefix': [special['bos']] + ([1037, 3861, 1997] if cfg.text.vocab_size > 3861 else [5, 6, 7])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--bundle', required=True, type=Path)
    ap.add_argument('--ref', type=Path, help='blip-parity folder: inputs.json (+ expected.json)')
    ap.add_argument('--greedy-steps', type=int, default=12)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--images', type=Path, help="also caption the first --n images of this folder (e.g. ../data/scenes/test) greedily with "
                    "both, after the manifest's prompt, and require identical captions for --min-identical of them")
    ap.add_argument('--n', type=int, default=200)
    ap.add_argument('--min-identical', type=float, default=0.99)
    a = ap.parse_args(argv)
    torch.set_grad_enabled(False)
    bundle = a.bundle.resolve()
    man = json.loads((bundle / 'manifest.json').read_text())
    rep = Report()

    print('manifest and tokenizer (node)')
    print('  ' + node_check('manifest_check.mjs', str(bundle / 'manifest.json'), tsx=True))
    tok = json.loads(node_check('tokenizer_check.mjs', str(bundle / man['tokenizer']['file']), 'a red circle'))
    enc = tok['encodings']['a red circle']
    st = man['tokenizer']['specialTokens']
    rep.flag('"a red circle" -> [CLS] ... [SEP]', enc['ids'][0] == st['cls'] and enc['ids'][-1] == st['eos'], f'{enc["tokens"]} {enc["ids"]}')
    rep.flag('special ids resolve in the tokenizer', all(tok['ids'][t] == st[k] for k, t in
             (('pad', '[PAD]'), ('cls', '[CLS]'), ('eos', '[SEP]'), ('bos', '[DEC]'), ('enc', '[ENC]'))), str(tok['ids']))

    # PyTorch from the bundle's weights. fp16 bundles carry half-precision weights in the graphs:
    # round ours the same way so the comparison checks the export, not the quantization.
    cfg = load_config(bundle / man['about'].get('modelConfig', 'weights/config.json'))
    half = str(man['about'].get('weightsDtype', '')).startswith('float16')
    rnd = (lambda sd: {k: v.half().float() for k, v in sd.items()}) if half else (lambda sd: sd)
    ret, cap = BlipRetrieval(cfg).eval(), BlipCaptioning(cfg).eval()
    ret.load_state_dict(rnd(load_file(bundle / man['weights']['retrieval'])), strict=True)
    cap.load_state_dict(rnd(load_file(bundle / man['weights']['captioning'])), strict=True)
    g = {k: (bundle / v['file'], v) for k, v in man['graphs'].items()}
    io = lambda k, side, name: g[k][1][side][name]  # noqa: E731  logical -> onnx name

    inputs = json.loads((a.ref / 'inputs.json').read_text()) if a.ref else random_inputs(cfg, st, torch.Generator().manual_seed(a.seed))
    px = torch.tensor(inputs['pixel_values'], dtype=torch.float32)
    ids = torch.tensor(inputs['input_ids'])
    mask = torch.tensor(inputs['attention_mask'])
    prefix = torch.tensor(inputs['decoder_prefix'])
    nimg, ntxt = len(px), len(ids)
    # every text against every image, [text][image] order flattened
    pair_ids = ids.repeat_interleave(nimg, 0)
    pair_mask = mask.repeat_interleave(nimg, 0)
    enc_ids = pair_ids.clone()
    enc_ids[:, 0] = st['enc']
    cap_graph = 'captionVision' if 'captionVision' in g else 'vision'

    jobs = OrtJobs()
    jv = jobs.add(g['vision'][0], {io('vision', 'inputs', 'pixelValues'): px})
    jt = jobs.add(g['text'][0], {io('text', 'inputs', 'inputIds'): ids, io('text', 'inputs', 'attentionMask'): mask})
    emb_out = io('vision', 'outputs', 'imageEmbeds')
    pt_emb = ret.image_embeds(px)
    # ITM on PyTorch's image tokens (tiled per pair), so the ITM graph is checked on its own
    itm_in = lambda t, m: {io('itm', 'inputs', 'inputIds'): t, io('itm', 'inputs', 'attentionMask'): m,  # noqa: E731
                           io('itm', 'inputs', 'imageEmbeds'): pt_emb.repeat(ntxt, 1, 1)}
    j_enc = jobs.add(g['itm'][0], itm_in(enc_ids, pair_mask))
    j_cls = jobs.add(g['itm'][0], itm_in(pair_ids, pair_mask))
    pt_cap_emb = cap.image_embeds(px)
    pre = prefix[None].expand(nimg, -1)
    dec_in = {io('decoder', 'inputs', 'inputIds'): pre, io('decoder', 'inputs', 'attentionMask'): torch.ones_like(pre),
              io('decoder', 'inputs', 'imageEmbeds'): pt_cap_emb}
    j_dec = jobs.add(g['decoder'][0], dec_in)
    # greedy entirely in onnxruntime: its own caption image tokens, then the decoder loop
    j_cv = jobs.add(g[cap_graph][0], {io(cap_graph, 'inputs', 'pixelValues'): px})
    j_greedy = jobs.add(g['decoder'][0], {**dec_in, io('decoder', 'inputs', 'imageEmbeds'): ('from', j_cv, io(cap_graph, 'outputs', 'imageEmbeds'))},
                        greedy={'steps': a.greedy_steps, 'ids': io('decoder', 'inputs', 'inputIds'),
                                'mask': io('decoder', 'inputs', 'attentionMask'), 'logits': io('decoder', 'outputs', 'logits')})

    if a.images:
        # real images, the manifest's preprocessing (PIL, as training did) and prompt; both sides get
        # the same pixels, so this checks the graphs on the inputs captions are made from
        from .finetune import load_pixels
        files = sorted(f for f in a.images.iterdir() if f.suffix.lower() in ('.png', '.jpg', '.jpeg'))[: a.n]
        if not files:
            raise SystemExit(f'--images {a.images}: no .png/.jpg images')
        prep, cap_cfg = man['preprocess'], man['caption']
        u8 = torch.from_numpy(load_pixels(files, prep)).float() / 255.0
        ipx = (u8 - torch.tensor(prep['mean']).view(1, 3, 1, 1)) / torch.tensor(prep['std']).view(1, 3, 1, 1)
        prompt = cap_cfg['prompt'].strip()
        prompt_ids = json.loads(node_check('tokenizer_check.mjs', str(bundle / man['tokenizer']['file']), prompt))['encodings'][prompt]['ids'][1:-1]
        cprefix = torch.tensor([st['bos']] + prompt_ids)
        cpre = cprefix[None].expand(len(ipx), -1)
        j_icv = jobs.add(g[cap_graph][0], {io(cap_graph, 'inputs', 'pixelValues'): ipx})
        j_icap = jobs.add(g['decoder'][0], {io('decoder', 'inputs', 'inputIds'): cpre, io('decoder', 'inputs', 'attentionMask'): torch.ones_like(cpre),
                                            io('decoder', 'inputs', 'imageEmbeds'): ('from', j_icv, io(cap_graph, 'outputs', 'imageEmbeds'))},
                          greedy={'steps': int(cap_cfg['maxLength']), 'ids': io('decoder', 'inputs', 'inputIds'),
                                  'mask': io('decoder', 'inputs', 'attentionMask'), 'logits': io('decoder', 'outputs', 'logits')})

    # shape sweep: every batch size 1..8, lengths around (not at) the trace length 7
    sweep = []
    max_len = min(cfg.text.max_position_embeddings, man['tokenizer']['maxLength'])
    gen = torch.Generator().manual_seed(a.seed + 1)
    for b, t in zip(range(1, 9), (3, 12, max_len, 5, 9, 20, 2, max_len)):
        t = min(t, max_len)
        p = torch.randn(b, 3, cfg.vision.image_size, cfg.vision.image_size, generator=gen)
        sid = torch.randint(5, min(2000, cfg.text.vocab_size), (b, t), generator=gen)
        sid[:, 0] = st['cls']
        sm = torch.ones_like(sid)
        sm[b // 2:, max(1, t - 2):] = 0  # half the rows padded
        sid[sm == 0] = st['pad']
        e = ret.image_embeds(p)
        ce = cap.image_embeds(p)
        did = sid.clone()
        did[:, 0] = st['bos']
        js = [
            jobs.add(g['vision'][0], {io('vision', 'inputs', 'pixelValues'): p}),
            jobs.add(g['text'][0], {io('text', 'inputs', 'inputIds'): sid, io('text', 'inputs', 'attentionMask'): sm}),
            jobs.add(g['itm'][0], {io('itm', 'inputs', 'inputIds'): sid, io('itm', 'inputs', 'attentionMask'): sm, io('itm', 'inputs', 'imageEmbeds'): e}),
            jobs.add(g['decoder'][0], {io('decoder', 'inputs', 'inputIds'): did, io('decoder', 'inputs', 'attentionMask'): sm, io('decoder', 'inputs', 'imageEmbeds'): ce}),
            jobs.add(g[cap_graph][0], {io(cap_graph, 'inputs', 'pixelValues'): p}),
        ]
        sweep.append((b, t, p, sid, sm, did, e, ce, js))

    print(f'onnxruntime-node: {len(jobs.jobs)} graph runs')
    res = jobs.run()
    out = lambda j, k, name: res[j]['outputs'][io(k, 'outputs', name)]  # noqa: E731

    print(f'fixture inputs ({"--ref " + str(a.ref) if a.ref else "random, seed " + str(a.seed)}): onnxruntime vs PyTorch')
    pt_img, pt_txt = ret.image_feat(pt_emb), ret.text_feat(ids, mask)
    ort_img, ort_txt = out(jv, 'vision', 'imageFeat'), out(jt, 'text', 'textFeat')
    rep.value('image_feat cosine (min)', cos_min(ort_img, pt_img), 0.9999, True)
    rep.value('text_feat cosine (min)', cos_min(ort_txt, pt_txt), 0.9999, True)
    rep.value('image_embeds max|diff|', maxdiff(res[jv]['outputs'][emb_out], pt_emb), 1e-3)
    rep.value('itc_sim max|diff|', maxdiff(ort_img @ ort_txt.T, (pt_img @ pt_txt.t()).numpy()), 1e-3)
    pt_itm_enc = ret.itm_logits(enc_ids, pair_mask, pt_emb.repeat(ntxt, 1, 1))
    pt_itm_cls = ret.itm_logits(pair_ids, pair_mask, pt_emb.repeat(ntxt, 1, 1))
    rep.value('itm logits, [ENC] first, max|diff|', maxdiff(out(j_enc, 'itm', 'logits'), pt_itm_enc), 1e-3)
    rep.value('itm logits, [CLS] first, max|diff|', maxdiff(out(j_cls, 'itm', 'logits'), pt_itm_cls), 1e-3)
    pt_dec = cap.decoder_logits(pre, torch.ones_like(pre), pt_cap_emb)
    rep.value('decoder logits max|diff|', maxdiff(out(j_dec, 'decoder', 'logits'), pt_dec), 1e-3)
    pt_greedy = cap.greedy(px, prefix, a.greedy_steps).numpy()
    ort_greedy = np.array(res[j_greedy]['ids'])
    rep.flag(f'greedy ids ({a.greedy_steps} steps) identical', np.array_equal(ort_greedy, pt_greedy), '' if np.array_equal(ort_greedy, pt_greedy) else f'\n    ort {ort_greedy.tolist()}\n    pt  {pt_greedy.tolist()}')

    if a.ref and (a.ref / 'expected.json').exists():
        exp = json.loads((a.ref / 'expected.json').read_text())
        print('fixture inputs: onnxruntime vs the reference expected.json')
        rep.value('image_feat max|diff|', maxdiff(ort_img, exp['image_feat']), 1e-4)
        rep.value('text_feat max|diff|', maxdiff(ort_txt, exp['text_feat']), 1e-4)
        rep.value('itc_sim max|diff|', maxdiff(ort_img @ ort_txt.T, exp['itc_sim']), 1e-4)
        shape = (ntxt, nimg, 2)
        rep.value('itm_logits_enc_first max|diff|', maxdiff(out(j_enc, 'itm', 'logits').reshape(shape), exp['itm_logits_enc_first']), 1e-3)
        rep.value('itm_logits_cls_first max|diff|', maxdiff(out(j_cls, 'itm', 'logits').reshape(shape), exp['itm_logits_cls_first']), 1e-3)
        if (a.ref / exp.get('decoder_logits_file', '')).is_file():
            rep.value('decoder_logits max|diff|', maxdiff(out(j_dec, 'decoder', 'logits'), np.load(a.ref / exp['decoder_logits_file'])), 1e-3)
        if len(exp['greedy_ids'][0]) == len(ort_greedy[0]):
            rep.flag('greedy ids identical to expected', np.array_equal(ort_greedy, np.array(exp['greedy_ids'])))

    if a.images:
        def caption(row) -> list[int]:  # up to and including the first [SEP]
            row = [int(x) for x in row[len(cprefix):]]
            return row[: row.index(st['eos']) + 1] if st['eos'] in row else row
        pt_caps = [caption(r) for r in cap.greedy(ipx, cprefix, int(cap_cfg['maxLength'])).tolist()]
        ort_caps = [caption(r) for r in res[j_icap]['ids']]
        same = sum(p == o for p, o in zip(pt_caps, ort_caps)) / len(pt_caps)
        print(f'greedy captions of {len(pt_caps)} images from {a.images}: onnxruntime vs PyTorch')
        rep.value(f'identical captions (fraction, >= {a.min_identical})', same, a.min_identical, True)

    print('shape sweep: batch 1..8, sequence lengths != trace length, half the rows padded')
    worst = {'feat cosine': 1.0, 'image_embeds': 0.0, 'itm': 0.0, 'decoder': 0.0, 'caption embeds': 0.0}
    for b, t, p, sid, sm, did, e, ce, (v_, t_, i_, d_, c_) in sweep:
        shapes_ok = (out(v_, 'vision', 'imageFeat').shape == (b, cfg.projection_dim) and out(d_, 'decoder', 'logits').shape[:2] == (b, t))
        rep.ok &= shapes_ok
        worst['feat cosine'] = min(worst['feat cosine'], cos_min(out(v_, 'vision', 'imageFeat'), ret.image_feat(e)),
                                   cos_min(out(t_, 'text', 'textFeat'), ret.text_feat(sid, sm)))
        worst['image_embeds'] = max(worst['image_embeds'], maxdiff(res[v_]['outputs'][emb_out], e))
        worst['itm'] = max(worst['itm'], maxdiff(out(i_, 'itm', 'logits'), ret.itm_logits(sid, sm, e)))
        worst['decoder'] = max(worst['decoder'], maxdiff(out(d_, 'decoder', 'logits'), cap.decoder_logits(did, sm, ce)))
        worst['caption embeds'] = max(worst['caption embeds'], maxdiff(out(c_, cap_graph, 'imageEmbeds'), ce))
        print(f'    batch {b} length {t:3d}: shapes {"ok" if shapes_ok else "WRONG"}')
    rep.value('features cosine (min over sweep)', worst['feat cosine'], 0.9999, True)
    rep.value('image_embeds max|diff| (sweep)', worst['image_embeds'], 1e-3)
    rep.value(f'{cap_graph} imageEmbeds max|diff| (sweep)', worst['caption embeds'], 1e-3)
    rep.value('itm logits max|diff| (sweep)', worst['itm'], 1e-3)
    rep.value('decoder logits max|diff| (sweep)', worst['decoder'], 1e-3)
    print('PASS' if rep.ok else 'FAIL')
    return 0 if rep.ok else 1


if __name__ == '__main__':
    sys.exit(main())
