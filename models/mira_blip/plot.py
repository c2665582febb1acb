"""Learning curves as a hand-written SVG (no matplotlib): losses (ITC, ITM, LM) against steps on
the left, validation R@1 (ITC, ITM re-rank) and caption scene accuracy on the right.

    python -m mira_blip.plot runs/default/log.jsonl default/training-curves.svg
"""
from __future__ import annotations

import json
import sys
from html import escape
from pathlib import Path

COLORS = {'itc': '#1f77b4', 'itm': '#d62728', 'lm': '#2ca02c', 't2i_itc': '#1f77b4', 't2i_rerank': '#d62728', 'caption_scene_acc': '#2ca02c', 't2i_rerank_r5': '#ff7f0e'}


def read_log(path: Path):
    """Step and eval events, the last one per step (a resumed run re-logs the steps after its checkpoint)."""
    steps, evals = {}, {}
    for line in Path(path).read_text().splitlines():
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            continue
        if e.get('event') == 'step':
            steps[e['step']] = e
        elif e.get('event') == 'eval':
            evals[(e['step'], bool(e.get('final')))] = e
    return [steps[k] for k in sorted(steps)], [evals[k] for k in sorted(evals)]


def _panel(x0, y0, w, h, xmax, ymin, ymax, series, title, ylabel, fmt):
    out = [f'<g transform="translate({x0},{y0})">',
           f'<rect x="0" y="0" width="{w}" height="{h}" fill="white" stroke="#888"/>',
           f'<text x="{w / 2}" y="-10" text-anchor="middle" font-size="14" font-weight="bold">{escape(title)}</text>',
           f'<text x="-42" y="{h / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 -42 {h / 2})">{escape(ylabel)}</text>',
           f'<text x="{w / 2}" y="{h + 34}" text-anchor="middle" font-size="12">step</text>']
    sx = lambda x: w * x / max(1, xmax)  # noqa: E731
    sy = lambda y: h - h * (min(max(y, ymin), ymax) - ymin) / (ymax - ymin or 1)  # noqa: E731
    for i in range(6):
        yv = ymin + (ymax - ymin) * i / 5
        out.append(f'<line x1="0" x2="{w}" y1="{sy(yv):.1f}" y2="{sy(yv):.1f}" stroke="#eee"/>')
        out.append(f'<text x="-6" y="{sy(yv) + 4:.1f}" text-anchor="end" font-size="11">{fmt(yv)}</text>')
        xv = xmax * i / 5
        out.append(f'<text x="{sx(xv):.1f}" y="{h + 16}" text-anchor="middle" font-size="11">{int(xv)}</text>')
    for k, (name, pts, color, marker) in enumerate(series):
        if not pts:
            continue
        d = ' '.join(f'{"M" if i == 0 else "L"}{sx(x):.1f},{sy(y):.1f}' for i, (x, y) in enumerate(pts))
        out.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="1.6"/>')
        if marker:
            out.extend(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.8" fill="{color}"/>' for x, y in pts)
        ly = 14 + 16 * k
        out.append(f'<line x1="{w - 150}" x2="{w - 130}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{w - 125}" y="{ly + 4}" font-size="11">{escape(name)}</text>')
    out.append('</g>')
    return out


def svg(steps, evals, title='Mira default BLIP: training curves') -> str:
    W, H = 980, 420
    xmax = max([s['step'] for s in steps] + [e['step'] for e in evals] + [1])
    loss_series = []
    for k, label in (('itc', 'ITC loss'), ('itm', 'ITM loss'), ('lm', 'LM loss')):
        loss_series.append((label, [(s['step'], s[k]) for s in steps if k in s], COLORS[k], False))
    ymax = max([y for _, pts, _, _ in loss_series for _, y in pts] + [1.0])
    ev = [e for e in evals if not e.get('final')]
    fin = [e for e in evals if e.get('final')]
    get = lambda e, a, b=None: (e.get(a) or {}).get(b) if b else e.get(a)  # noqa: E731
    r_series = [
        ('t2i R@1 ITC', [(e['step'], get(e, 't2i_itc', 'r1')) for e in ev if get(e, 't2i_itc', 'r1') is not None], COLORS['t2i_itc'], True),
        ('t2i R@1 re-rank', [(e['step'], get(e, 't2i_rerank', 'r1')) for e in ev if get(e, 't2i_rerank', 'r1') is not None], COLORS['t2i_rerank'], True),
        ('t2i R@5 re-rank', [(e['step'], get(e, 't2i_rerank', 'r5')) for e in ev if get(e, 't2i_rerank', 'r5') is not None], COLORS['t2i_rerank_r5'], True),
        ('caption scene acc', [(e['step'], e['caption_scene_acc']) for e in ev if e.get('caption_scene_acc') is not None], COLORS['caption_scene_acc'], True),
    ]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif">',
             f'<rect width="{W}" height="{H}" fill="#fafafa"/>',
             f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="16">{escape(title)}</text>']
    parts += _panel(70, 60, 380, 290, xmax, 0.0, ymax * 1.05, loss_series, 'training losses', 'loss', lambda v: f'{v:.2f}')
    n_int = ev[0].get('n') if ev else None
    parts += _panel(560, 60, 380, 290, xmax, 0.0, 1.0, r_series, f'validation (seed 2, {n_int} images)' if n_int else 'validation (seed 2)',
                    'recall / accuracy', lambda v: f'{v:.1f}')
    if fin:  # the final pass (more images, so a harder gallery) as hollow squares at its step
        f = fin[-1]
        for val, color in ((get(f, 't2i_itc', 'r1'), COLORS['t2i_itc']), (get(f, 't2i_rerank', 'r1'), COLORS['t2i_rerank']),
                           (get(f, 't2i_rerank', 'r5'), COLORS['t2i_rerank_r5']), (f.get('caption_scene_acc'), COLORS['caption_scene_acc'])):
            if val is not None:
                x, y = 560 + 380 * f['step'] / max(1, xmax), 60 + 290 - 290 * val
                parts.append(f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="none" stroke="{color}" stroke-width="1.5"/>')
    if fin:
        f = fin[-1]
        txt = (f'final, squares (n={f.get("n")} images, step {f.get("step")}): t2i R@1 ITC {get(f, "t2i_itc", "r1"):.3f}, re-rank {get(f, "t2i_rerank", "r1"):.3f}, '
               f're-rank R@5 {get(f, "t2i_rerank", "r5"):.3f}, caption scene acc {f.get("caption_scene_acc", float("nan")):.3f}')
        parts.append(f'<text x="{W / 2}" y="{H - 14}" text-anchor="middle" font-size="12">{escape(txt)}</text>')
    parts.append('</svg>')
    return '\n'.join(parts) + '\n'


def write_curves(log_path: Path, out: Path) -> None:
    steps, evals = read_log(log_path)
    Path(out).write_text(svg(steps, evals))


if __name__ == '__main__':
    write_curves(Path(sys.argv[1]), Path(sys.argv[2]))
