"""Export HF-named BLIP checkpoints to a Mira bundle (see models/README.md).

    cd models && /usr/bin/python3 -m mira_blip.export \\
        --retrieval R.safetensors --captioning C.safetensors --config config.json \\
        --tokenizer tokenizer.json --out DIR [--name N --version V] [--image-size S] \\
        [--mean m m m --std s s s] [--caption-prompt "a picture of "] [--max-text-len 35] [--fp16]

Writes vision.onnx, text.onnx, itm.onnx, decoder.onnx, caption_vision.onnx (only when the
captioning checkpoint's vision encoder differs from the retrieval one), tokenizer.json,
weights/{retrieval,captioning}.safetensors, weights/config.json and manifest.json.
Verify the result with `python -m mira_blip.parity_check --bundle DIR`.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import tokenizers as toks
from .modeling import BlipCaptioning, BlipConfig, BlipRetrieval, config_from_dict, load_hf_weights
from .safetensors_io import save_file

# torch 1.13's exporter warns about prim::Constant shape inference on every graph; harmless here
warnings.filterwarnings('ignore', message='The shape inference of prim::Constant')

OPSET = 14  # torch 1.13 exports LayerNorm/erf/Range fine at 14; ORT supports it everywhere
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


# ----------------------------------------------------------------------------- graph wrappers
class VisionGraph(nn.Module):
    def __init__(self, m: BlipRetrieval):
        super().__init__()
        self.m = m

    def forward(self, pixel_values):
        emb = self.m.image_embeds(pixel_values)
        return self.m.image_feat(emb), emb


class TextGraph(nn.Module):
    def __init__(self, m: BlipRetrieval):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask):
        return self.m.text_feat(input_ids, attention_mask)


class ItmGraph(nn.Module):
    def __init__(self, m: BlipRetrieval):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask, image_embeds):
        return self.m.itm_logits(input_ids, attention_mask, image_embeds)


class DecoderGraph(nn.Module):
    def __init__(self, m: BlipCaptioning):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask, image_embeds):
        return self.m.decoder_logits(input_ids, attention_mask, image_embeds)


class CaptionVisionGraph(nn.Module):
    def __init__(self, m: BlipCaptioning):
        super().__init__()
        self.m = m

    def forward(self, pixel_values):
        return self.m.image_embeds(pixel_values)


class Fp16Weights(nn.Module):
    """Stores a module's float weights as float16 buffers and casts them back to float32 inside the
    graph: the .onnx file halves, while inputs, outputs and arithmetic stay float32 (the contract).
    Works on a deep copy (the exporter reuses the fp32 models); tied parameters stay one tensor."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = copy.deepcopy(inner)
        self.slots: list[tuple[nn.Module, str, str]] = []  # (module, parameter name, buffer name)
        by_id: dict[int, str] = {}
        # walk modules, not named_parameters(): that hides the second name of a tied weight
        for mod in self.inner.modules():
            for name, p in list(mod._parameters.items()):
                if p is None:
                    continue
                if id(p) not in by_id:
                    by_id[id(p)] = f'w{len(by_id)}'
                    self.register_buffer(by_id[id(p)], p.detach().half())
                self.slots.append((mod, name, by_id[id(p)]))
                mod._parameters[name] = None  # the fp32 copy must not reach the graph

    def forward(self, *args):
        casts = {b: getattr(self, b).float() for b in {b for _, _, b in self.slots}}
        for mod, name, b in self.slots:
            mod._parameters[name] = casts[b]  # a plain tensor in the slot: the trace records the Cast
        try:
            return self.inner(*args)
        finally:
            for mod, name, _ in self.slots:
                mod._parameters[name] = None


# ONNX names (what the manifest maps logical names to) and dynamic axes
SEQ_INPUTS = {'input_ids': {0: 'batch', 1: 'sequence'}, 'attention_mask': {0: 'batch', 1: 'sequence'}}
GRAPHS = {
    # key: (file, wrapper, inputs {logical: onnx}, outputs {logical: onnx}, dynamic axes)
    'vision': ('vision.onnx', VisionGraph, {'pixelValues': 'pixel_values'}, {'imageFeat': 'image_feat', 'imageEmbeds': 'image_embeds'},
               {'pixel_values': {0: 'batch'}, 'image_feat': {0: 'batch'}, 'image_embeds': {0: 'batch'}}),
    'text': ('text.onnx', TextGraph, {'inputIds': 'input_ids', 'attentionMask': 'attention_mask'}, {'textFeat': 'text_feat'},
             {**SEQ_INPUTS, 'text_feat': {0: 'batch'}}),
    'itm': ('itm.onnx', ItmGraph, {'inputIds': 'input_ids', 'attentionMask': 'attention_mask', 'imageEmbeds': 'image_embeds'}, {'logits': 'itm_logits'},
            {**SEQ_INPUTS, 'image_embeds': {0: 'batch'}, 'itm_logits': {0: 'batch'}}),
    'decoder': ('decoder.onnx', DecoderGraph, {'inputIds': 'input_ids', 'attentionMask': 'attention_mask', 'imageEmbeds': 'image_embeds'}, {'logits': 'logits'},
                {**SEQ_INPUTS, 'image_embeds': {0: 'batch'}, 'logits': {0: 'batch', 1: 'sequence'}}),
    'captionVision': ('caption_vision.onnx', CaptionVisionGraph, {'pixelValues': 'pixel_values'}, {'imageEmbeds': 'image_embeds'},
                      {'pixel_values': {0: 'batch'}, 'image_embeds': {0: 'batch'}}),
}


def export_graph(key: str, model: nn.Module, args: tuple, out_dir: Path, fp16: bool) -> dict:
    file, wrapper, inputs, outputs, axes = GRAPHS[key]
    g = wrapper(model).eval()
    if fp16:
        g = Fp16Weights(g).eval()
    with torch.no_grad():
        torch.onnx.export(
            g, args, str(out_dir / file), opset_version=OPSET,
            input_names=list(inputs.values()), output_names=list(outputs.values()), dynamic_axes=axes,
            # folding would turn the fp16 -> fp32 casts back into fp32 initializers
            do_constant_folding=not fp16,
        )
    return {'file': file, 'inputs': inputs, 'outputs': outputs}


# ------------------------------------------------------------------------------------ helpers
def resize_position_embedding(sd: dict, cfg: BlipConfig, size: int) -> None:
    """Resample the ViT position grid to a new input size in place (bicubic, as BLIP's
    interpolate_pos_embed does when fine-tuning at another resolution)."""
    key = 'vision_model.embeddings.position_embedding'
    pos = sd[key]
    old = int(round((pos.shape[1] - 1) ** 0.5))
    new = size // cfg.vision.patch_size
    if old == new:
        return
    grid = pos[:, 1:].reshape(1, old, old, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(new, new), mode='bicubic', align_corners=False)
    sd[key] = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).flatten(1, 2)], dim=1)


def load_tokenizer(path: Path) -> dict:
    """A tokenizer.json as is, or BLIP's from a BERT vocab.txt / tokenizer.json lacking [DEC]/[ENC]."""
    if path.suffix == '.txt':
        return toks.from_bert(path)
    tj = json.loads(path.read_text(encoding='utf-8'))
    added = {t['content'] for t in tj.get('added_tokens', [])} | set(tj['model'].get('vocab', {}))
    return tj if {'[DEC]', '[ENC]'} <= added else toks.from_bert(path)


def same_vision(a: dict, b: dict) -> bool:
    keys = [k for k in a if k.startswith('vision_model.')]
    return all(k in b and a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in keys)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--retrieval', required=True, type=Path, help='HF BlipForImageTextRetrieval weights (.safetensors or .bin)')
    ap.add_argument('--captioning', required=True, type=Path, help='HF BlipForConditionalGeneration weights')
    ap.add_argument('--config', required=True, type=Path, help='blip-parity style config.json (or HF config.json)')
    ap.add_argument('--tokenizer', required=True, type=Path, help='tokenizer.json (or BERT vocab.txt)')
    ap.add_argument('--out', required=True, type=Path)
    ap.add_argument('--name', default='blip')
    ap.add_argument('--version', default='1')
    ap.add_argument('--image-size', type=int, help='input side; resamples position embeddings if it differs from the config')
    ap.add_argument('--mean', type=float, nargs=3, default=CLIP_MEAN)
    ap.add_argument('--std', type=float, nargs=3, default=CLIP_STD)
    ap.add_argument('--caption-prompt', default='a picture of ')
    ap.add_argument('--max-text-len', type=int, default=35)
    ap.add_argument('--fp16', action='store_true', help='store graph weights as float16 (inputs/outputs/compute stay float32)')
    a = ap.parse_args(argv)
    torch.set_grad_enabled(False)

    cfg_dict = json.loads(a.config.read_text())
    cfg = config_from_dict(cfg_dict)
    rsd, csd = load_hf_weights(a.retrieval), load_hf_weights(a.captioning)
    if a.image_size and a.image_size != cfg.vision.image_size:
        for sd in (rsd, csd):
            resize_position_embedding(sd, cfg, a.image_size)
        cfg.vision.image_size = a.image_size
    ret, cap = BlipRetrieval(cfg).eval(), BlipCaptioning(cfg).eval()
    ret.load_state_dict(rsd, strict=True)
    cap.load_state_dict(csd, strict=True)

    tj = load_tokenizer(a.tokenizer)
    special = toks.special_ids(tj)
    expect = {'bos': cfg.bos_token_id, 'enc': cfg.enc_token_id, 'eos': cfg.sep_token_id, 'pad': cfg.pad_token_id}
    bad = {k: (special[k], v) for k, v in expect.items() if special[k] != v}
    if bad:
        sys.exit(f'tokenizer and config disagree on special ids (tokenizer, config): {bad}')
    if toks.vocab_size(tj) > cfg.text.vocab_size:
        sys.exit(f'tokenizer has {toks.vocab_size(tj)} tokens, the text model only {cfg.text.vocab_size}')

    out: Path = a.out
    (out / 'weights').mkdir(parents=True, exist_ok=True)
    s, n_tok, dv = cfg.vision.image_size, cfg.vision.num_positions, cfg.vision.hidden_size
    pixels = torch.randn(2, 3, s, s)
    ids = torch.randint(5, min(2000, cfg.text.vocab_size), (2, 7))  # trace length 7: checks must use other lengths too; ids within small vocabularies too
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    emb = ret.image_embeds(pixels)
    separate = not same_vision(ret.state_dict(), cap.state_dict())
    graphs = {
        'vision': export_graph('vision', ret, (pixels,), out, a.fp16),
        'text': export_graph('text', ret, (ids, mask), out, a.fp16),
        'itm': export_graph('itm', ret, (ids, mask, emb), out, a.fp16),
        'decoder': export_graph('decoder', cap, (ids, mask, cap.image_embeds(pixels)), out, a.fp16),
    }
    if separate:
        graphs['captionVision'] = export_graph('captionVision', cap, (pixels,), out, a.fp16)
    elif (out / 'caption_vision.onnx').exists():
        (out / 'caption_vision.onnx').unlink()  # stale from an earlier export

    meta = {'format': 'pt', 'exported_by': 'mira_blip.export'}
    save_file(ret.state_dict(), out / 'weights/retrieval.safetensors', {**meta, 'source': a.retrieval.name})
    save_file(cap.state_dict(), out / 'weights/captioning.safetensors', {**meta, 'source': a.captioning.name})
    cfg_out = {**cfg_dict, 'vision': {**cfg_dict.get('vision', {}), 'image_size': s}} if 'vision' in cfg_dict else cfg_dict
    if 'vision' not in cfg_dict:  # HF layout: keep it, note the exported size
        cfg_out = {**cfg_dict, 'vision_config': {**cfg_dict.get('vision_config', {}), 'image_size': s}}
    (out / 'weights/config.json').write_text(json.dumps(cfg_out, indent=1))
    toks.write(tj, out / 'tokenizer.json')

    manifest = {
        'schemaVersion': 1,
        'family': 'blip',
        'name': a.name,
        'version': a.version,
        'embedDim': cfg.projection_dim,
        'imageTokens': {'count': n_tok, 'dim': dv},
        'preprocess': {'size': s, 'resize': 'squash', 'kernel': 'bicubic', 'mean': list(a.mean), 'std': list(a.std), 'alpha': {'mode': 'drop'}},
        'tokenizer': {'file': 'tokenizer.json', 'maxLength': a.max_text_len, 'padding': 'longest', 'specialTokens': special},
        'caption': {'prompt': a.caption_prompt, 'maxLength': 20, 'minLength': 5, 'numBeams': 3, 'repetitionPenalty': 1.0},
        'itm': {'firstToken': 'enc'},
        'classify': {'template': 'a picture of {}'},
        'graphs': graphs,
        'weights': {'retrieval': 'weights/retrieval.safetensors', 'captioning': 'weights/captioning.safetensors'},
        'about': {
            'exporter': 'models/mira_blip/export.py',
            'source': {'retrieval': str(a.retrieval), 'captioning': str(a.captioning), 'config': str(a.config)},
            'modelConfig': 'weights/config.json',
            'separateCaptionVision': separate,
            'onnxOpset': OPSET,
            'torch': torch.__version__,
            'weightsDtype': 'float16-in-graph' if a.fp16 else 'float32',
        },
    }
    (out / 'manifest.json').write_text(json.dumps(manifest, indent=2) + '\n')
    print(f'{out}: {", ".join(g["file"] for g in graphs.values())}; embedDim {cfg.projection_dim}, '
          f'imageTokens {n_tok}x{dv}, size {s}, captionVision {"separate" if separate else "shared"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
