"""Parity of mira_blip.modeling against Salesforce BLIP's outputs on the blip-parity fixtures.

    cd models && /usr/bin/python3 -m mira_blip.test_parity --ref /work/shared/reference/blip-parity

Loads both checkpoints with strict=True, recomputes every value of expected.json and
decoder_logits.npy, prints the max abs difference of each and exits 1 if any exceeds --tol.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from .modeling import BlipCaptioning, BlipRetrieval, load_captioning, load_config, load_retrieval


def compute_reference_outputs(ret: BlipRetrieval, cap: BlipCaptioning, inputs: dict, enc_id: int, n_greedy: int) -> dict[str, np.ndarray]:
    """Everything expected.json holds, computed by our modules (shared with parity_check)."""
    pixels = torch.tensor(inputs['pixel_values'], dtype=torch.float32)
    ids = torch.tensor(inputs['input_ids'], dtype=torch.long)
    mask = torch.tensor(inputs['attention_mask'], dtype=torch.long)
    prefix = torch.tensor(inputs['decoder_prefix'], dtype=torch.long)
    with torch.no_grad():
        emb = ret.image_embeds(pixels)
        img = ret.image_feat(emb)
        txt = ret.text_feat(ids, mask)
        out = {'image_embeds': emb, 'image_feat': img, 'text_feat': txt, 'itc_sim': img @ txt.t()}
        enc_ids = ids.clone()
        enc_ids[:, 0] = enc_id
        for name, tids in (('itm_logits_enc_first', enc_ids), ('itm_logits_cls_first', ids)):
            # [text][image][2]: every text against every image
            out[name] = torch.stack([
                ret.itm_logits(tids[t : t + 1].expand(len(pixels), -1), mask[t : t + 1].expand(len(pixels), -1), emb)
                for t in range(len(ids))
            ])
        cap_emb = cap.image_embeds(pixels)
        pre = prefix[None].expand(len(pixels), -1)
        out['decoder_logits'] = cap.decoder_logits(pre, torch.ones_like(pre), cap_emb)
        out['greedy_ids'] = cap.greedy(None, prefix, n_greedy, image_embeds=cap_emb)
    return {k: v.numpy() for k, v in out.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--ref', default='/work/shared/reference/blip-parity')
    ap.add_argument('--tol', type=float, default=1e-5)
    a = ap.parse_args(argv)
    ref = Path(a.ref)
    torch.set_grad_enabled(False)
    cfg_json = json.loads((ref / 'config.json').read_text())
    cfg = load_config(ref / 'config.json')
    ret = load_retrieval(ref / 'retrieval.safetensors', cfg)
    cap = load_captioning(ref / 'captioning.safetensors', cfg)
    assert cap.text_decoder.cls.predictions.decoder.weight is cap.text_decoder.bert.embeddings.word_embeddings.weight
    print(f'loaded retrieval ({len(ret.state_dict())} keys) and captioning ({len(cap.state_dict())} keys) strictly')

    inputs = json.loads((ref / 'inputs.json').read_text())
    exp = json.loads((ref / 'expected.json').read_text())
    exp_greedy = np.array(exp['greedy_ids'])
    got = compute_reference_outputs(ret, cap, inputs, cfg_json['enc_token_id'], exp_greedy.shape[1] - len(inputs['decoder_prefix']))

    ok = True
    for key in ('image_embeds', 'image_feat', 'text_feat', 'itc_sim', 'itm_logits_enc_first', 'itm_logits_cls_first'):
        want = np.array(exp[key], dtype=np.float32)
        diff = float(np.abs(got[key] - want).max()) if got[key].shape == want.shape else float('inf')
        ok &= diff <= a.tol
        print(f'{key:24s} shape {list(want.shape)!s:16s} max|diff| {diff:.3e} {"ok" if diff <= a.tol else "FAIL"}')
    want = np.load(ref / exp.get('decoder_logits_file', 'decoder_logits.npy')).astype(np.float32)
    want = want.reshape(exp['decoder_logits_shape'])
    diff = float(np.abs(got['decoder_logits'] - want).max())
    ok &= diff <= a.tol
    print(f'{"decoder_logits":24s} shape {list(want.shape)!s:16s} max|diff| {diff:.3e} {"ok" if diff <= a.tol else "FAIL"}')
    same = got['greedy_ids'].shape == exp_greedy.shape and bool((got['greedy_ids'] == exp_greedy).all())
    ok &= same
    print(f'{"greedy_ids":24s} shape {list(exp_greedy.shape)!s:16s} {"identical" if same else "DIFFERENT: " + str(got["greedy_ids"].tolist())}')
    print('PASS' if ok else 'FAIL')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
