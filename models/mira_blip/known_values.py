"""Check a bundle made from the real Salesforce BLIP base checkpoints against the values transformers'
conversion script asserts for BLIP's demo image (see /work/shared/reference/blip-parity/README.md).

    cd models && /usr/bin/python3 -m mira_blip.known_values --bundle DIR --image demo.jpg

Runs the bundle's ONNX graphs with onnxruntime-node, and the bundle's weights in PyTorch, on:
- the demo image, preprocessed as BLIP does (PIL RGB, Resize((S, S), BICUBIC), ToTensor, Normalize);
- "A picture of a woman with a dog sitting in a beach" padded to 35 tokens with [CLS] first and an
  all-ones attention mask (the script passes no mask, so the padding is attended);
- greedy captioning from the prompt "a picture of", stopping at [SEP] (at most 20 tokens in all).
--no-expect only prints the values (for bundles of other weights).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .modeling import BlipCaptioning, BlipRetrieval, load_config
from .parity_check import OrtJobs, node_check
from .safetensors_io import load_file

ITC = 0.2110687494277954
ITM_PROB = 0.45698845386505127
CAPTION = [30522, 1037, 3861, 1997, 1037, 2450, 3564, 2006, 1996, 3509, 2007, 2014, 3899, 102]
QUESTION = 'A picture of a woman with a dog sitting in a beach'


def preprocess(path: Path, pre: dict) -> torch.Tensor:
    img = Image.open(path).convert('RGB')  # drops alpha without flattening, like BLIP's transform
    img = img.resize((pre['size'], pre['size']), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean, std = torch.tensor(pre['mean'])[:, None, None], torch.tensor(pre['std'])[:, None, None]
    return ((x - mean) / std)[None]


def cut_at(ids: list[int], eos: int) -> list[int]:
    return ids[: ids.index(eos) + 1] if eos in ids else ids


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--bundle', required=True, type=Path)
    ap.add_argument('--image', required=True, type=Path, help="BLIP's demo.jpg")
    ap.add_argument('--no-expect', action='store_true')
    a = ap.parse_args(argv)
    torch.set_grad_enabled(False)
    bundle = a.bundle.resolve()
    man = json.loads((bundle / 'manifest.json').read_text())
    st, g = man['tokenizer']['specialTokens'], man['graphs']

    tok = json.loads(node_check('tokenizer_check.mjs', str(bundle / man['tokenizer']['file']), QUESTION, 'a picture of'))
    q = tok['encodings'][QUESTION]['ids'][:35]
    ids = torch.tensor([q + [st['pad']] * (35 - len(q))])
    mask = torch.ones_like(ids)  # as the conversion script: no mask given, padding attended
    prompt = tok['encodings']['a picture of']['ids']
    prefix = torch.tensor([[st['bos']] + prompt[1:-1]])  # [DEC] replaces [CLS], trailing [SEP] dropped
    steps = 20 - prefix.shape[1]
    px = preprocess(a.image, man['preprocess'])

    cap_key = 'captionVision' if 'captionVision' in g else 'vision'
    jobs = OrtJobs()
    jv = jobs.add(bundle / g['vision']['file'], {g['vision']['inputs']['pixelValues']: px})
    jt = jobs.add(bundle / g['text']['file'], {g['text']['inputs']['inputIds']: ids, g['text']['inputs']['attentionMask']: mask})
    ji = jobs.add(bundle / g['itm']['file'], {g['itm']['inputs']['inputIds']: ids, g['itm']['inputs']['attentionMask']: mask,
                                             g['itm']['inputs']['imageEmbeds']: ('from', jv, g['vision']['outputs']['imageEmbeds'])})
    jc = jobs.add(bundle / g[cap_key]['file'], {g[cap_key]['inputs']['pixelValues']: px})
    d = g['decoder']
    jd = jobs.add(bundle / d['file'], {d['inputs']['inputIds']: prefix, d['inputs']['attentionMask']: torch.ones_like(prefix),
                                      d['inputs']['imageEmbeds']: ('from', jc, g[cap_key]['outputs']['imageEmbeds'])},
                  greedy={'steps': steps, 'ids': d['inputs']['inputIds'], 'mask': d['inputs']['attentionMask'], 'logits': d['outputs']['logits']})
    res = jobs.run()
    o = lambda j, k, n: res[j]['outputs'][g[k]['outputs'][n]]  # noqa: E731
    ort_vals = {
        'itc': float(o(jv, 'vision', 'imageFeat')[0] @ o(jt, 'text', 'textFeat')[0]),
        'itm': float(torch.softmax(torch.tensor(o(ji, 'itm', 'logits')), -1)[0, 1]),
        'caption': cut_at(res[jd]['ids'][0], st['eos']),
    }

    cfg = load_config(bundle / man['about'].get('modelConfig', 'weights/config.json'))
    ret, cap = BlipRetrieval(cfg).eval(), BlipCaptioning(cfg).eval()
    ret.load_state_dict(load_file(bundle / man['weights']['retrieval']), strict=True)
    cap.load_state_dict(load_file(bundle / man['weights']['captioning']), strict=True)
    emb = ret.image_embeds(px)
    pt_vals = {
        'itc': float(ret.image_feat(emb)[0] @ ret.text_feat(ids, mask)[0]),
        'itm': float(ret.itm_logits(ids, mask, emb).softmax(-1)[0, 1]),
        'caption': cut_at(cap.greedy(px, prefix[0], steps)[0].tolist(), st['eos']),
    }

    ok = True
    print(f'prompt ids {prefix[0].tolist()}, question ids {q}')
    for name, want in (('itc', ITC), ('itm', ITM_PROB)):
        for side, vals in (('onnxruntime', ort_vals), ('pytorch', pt_vals)):
            diff = abs(vals[name] - want)
            good = a.no_expect or diff <= 1e-3
            ok &= good
            print(f'{name} {side:12s} {vals[name]:.8f}' + ('' if a.no_expect else f'  known {want:.8f}  |diff| {diff:.2e} {"ok" if good else "FAIL"}'))
    for side, vals in (('onnxruntime', ort_vals), ('pytorch', pt_vals)):
        good = a.no_expect or vals['caption'] == CAPTION
        ok &= good
        print(f'caption {side:12s} {vals["caption"]}' + ('' if a.no_expect else f' {"ok" if good else "FAIL, known " + str(CAPTION)}'))
    print('PASS' if ok else 'FAIL')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
