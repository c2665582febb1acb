"""Smoke test of the fine-tuning entry point, in seconds: a tiny random BLIP bundle (with the
convolutional stem of Mira's default model), twelve drawn images, three steps, the parity check of
the fine-tuned bundle's graphs against PyTorch; then the exit codes for bad input.

    cd models && /usr/bin/python3 -m mira_blip.test_finetune
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path


def make_bundle(root: Path) -> Path:
    from PIL import Image  # noqa: F401

    from . import tokenizers as toks
    from .train import build_model, export_bundle, model_config, save_weights

    words = ['a', 'picture', 'of', 'red', 'green', 'blue', 'yellow', 'square', 'circle', 'small', 'large']
    tj = toks.from_words(words)
    a = argparse.Namespace(image_size=32, patch=16, vision_width=32, vision_layers=1, heads=2, mlp_ratio=2, text_width=32,
                           text_layers=1, max_len=16, embed_dim=16, conv_stem=[4, 8, 8])
    cfg = model_config(a, tj)
    model = build_model(cfg, True, 0).eval()
    save_weights(model, cfg, tj, root / 'w')
    caption = {'prompt': 'a picture of ', 'maxLength': 8, 'minLength': 1, 'numBeams': 1, 'repetitionPenalty': 1.0}
    export_bundle(root / 'w', root / 'bundle', 'tiny', '1', 16, caption, {'test': True})
    return root / 'bundle'


def make_pairs(root: Path) -> Path:
    from PIL import Image, ImageDraw

    colors = {'red': (220, 30, 30), 'green': (30, 200, 30), 'blue': (30, 30, 220), 'yellow': (230, 220, 20)}
    (root / 'img').mkdir()
    lines = []
    for i, (name, rgb) in enumerate([(c, v) for c, v in colors.items()] * 3):
        im = Image.new('RGB', (40, 40), (128, 128, 128))
        d = ImageDraw.Draw(im)
        shape = 'square' if i % 2 else 'circle'
        box = (8 + i % 3, 8, 30, 30)
        (d.rectangle if shape == 'square' else d.ellipse)(box, fill=rgb)
        im.save(root / 'img' / f'{i}.png')
        lines.append(json.dumps({'image': f'{i}.png', 'caption': f'a {"small" if i % 3 else "large"} {name} {shape}'}))
    (root / 'pairs.jsonl').write_text('\n'.join(lines) + '\n')
    return root / 'pairs.jsonl'


def run_ft(args: list[str]) -> tuple[int, list[dict]]:
    from .finetune import run

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = run(args)
    events = [json.loads(line) for line in buf.getvalue().splitlines() if line.startswith('{')]
    return code, events


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle = make_bundle(root)
        pairs = make_pairs(root)
        out = root / 'v2'
        base = ['--bundle', str(bundle), '--pairs', str(pairs), '--images-root', str(root / 'img')]
        code, ev = run_ft(base + ['--out', str(out), '--steps', '3', '--batch', '4', '--holdout', '0.25', '--device', 'cpu'])
        assert code == 0, ev
        kinds = [e['event'] for e in ev]
        assert kinds[0] == 'start' and kinds[-1] == 'done' and 'step' in kinds and kinds.count('eval') == 2, kinds
        report = json.loads((out / 'report.json').read_text())
        assert report['before'] and report['after'] and 0 <= report['after']['t2i_rerank_r1'] <= 1, report
        m = json.loads((out / 'manifest.json').read_text())
        assert m['name'] == 'tiny' and m['version'] == '2', (m['name'], m['version'])
        assert (out / 'weights' / 'retrieval.safetensors').is_file() and (out / 'decoder.onnx').is_file()
        assert m['about']['fineTuned']['steps'] == 3
        assert json.loads((out / 'weights' / 'config.json').read_text())['vision']['conv_stem'] == [4, 8, 8]

        from .parity_check import main as parity
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = parity(['--bundle', str(out), '--images', str(root / 'img'), '--n', '12'])
        assert code == 0 and buf.getvalue().rstrip().endswith('PASS'), buf.getvalue()[-2000:]
        assert 'greedy captions of 12 images' in buf.getvalue(), buf.getvalue()[-2000:]

        bad = root / 'bad.jsonl'
        cases = {
            'missing pairs file': (base[:2] + ['--pairs', str(root / 'nope.jsonl')] + base[4:], 'nope.jsonl'),
            'bad json': (None, 'bad.jsonl:2'),
            'missing caption': (None, 'caption'),
            'missing image': (None, 'missing.png'),
            'bad argument': (base + ['--holdout', '2'], '--holdout'),
            'existing out': (base, 'already holds a bundle'),
        }
        contents = {'bad json': '{"image": "0.png", "caption": "a red circle"}\n{nope\n',
                    'missing caption': '{"image": "0.png"}\n',
                    'missing image': '{"image": "missing.png", "caption": "a red circle"}\n'}
        for name, (args, needle) in cases.items():
            if args is None:
                bad.write_text(contents[name])
                args = base[:2] + ['--pairs', str(bad)] + base[4:]
            target = out if name == 'existing out' else root / 'fresh'
            code, ev = run_ft(args + ['--out', str(target), '--steps', '1'])
            assert code == 2, (name, code, ev)
            assert ev[-1]['event'] == 'error' and needle in ev[-1]['message'] and '\n' not in ev[-1]['message'], (name, ev[-1])
    print('finetune smoke test: ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
