/** The ef sweep as a recall–QPS plot: hand-written SVG, QPS on a log scale. */
export interface SweepPoint {
  ef: number;
  recall: number;
  miraQps: number;
  bareQps: number;
}

export function sweepSvg(points: SweepPoint[], title: string): string {
  const W = 760;
  const H = 460;
  const m = { left: 78, right: 170, top: 48, bottom: 60 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const qps = points.flatMap((p) => [p.miraQps, p.bareQps]);
  const yLo = Math.floor(Math.log10(Math.min(...qps)) * 4) / 4;
  const yHi = Math.ceil(Math.log10(Math.max(...qps)) * 4) / 4;
  const xLo = Math.max(0, Math.floor(Math.min(...points.map((p) => p.recall)) * 10) / 10 - 0.05);
  const x = (r: number) => m.left + ((r - xLo) / (1 - xLo)) * pw;
  const y = (q: number) => m.top + (1 - (Math.log10(q) - yLo) / (yHi - yLo || 1)) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${m.left}" y="24" font-size="15" font-weight="bold">${esc(title)}</text>`);
  for (let r = Math.ceil(xLo * 20) / 20; r <= 1.0001; r += 0.05) {
    const px = x(r).toFixed(1);
    out.push(`<line x1="${px}" y1="${m.top}" x2="${px}" y2="${m.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${px}" y="${m.top + ph + 18}" text-anchor="middle">${r.toFixed(2)}</text>`);
  }
  for (const q of logTicks(yLo, yHi)) {
    const py = y(q).toFixed(1);
    out.push(`<line x1="${m.left}" y1="${py}" x2="${m.left + pw}" y2="${py}" stroke="#eee"/>`);
    out.push(`<text x="${m.left - 8}" y="${py}" text-anchor="end" dominant-baseline="middle">${q >= 1000 ? `${q / 1000}k` : q}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${H - 16}" text-anchor="middle">recall@10 (against exact search)</text>`);
  out.push(`<text transform="translate(20 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">queries per CPU second, one thread (log)</text>`);
  const series = [
    { name: 'Mira index layer', color: '#1f77b4', qps: (p: SweepPoint) => p.miraQps, dash: '' },
    { name: 'bare hnswlib-node', color: '#d62728', qps: (p: SweepPoint) => p.bareQps, dash: ' stroke-dasharray="5 4"' },
  ];
  series.forEach((s, i) => {
    const pts = points.map((p) => `${x(p.recall).toFixed(1)},${y(s.qps(p)).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash}/>`);
    for (const p of points) out.push(`<circle cx="${x(p.recall).toFixed(1)}" cy="${y(s.qps(p)).toFixed(1)}" r="3.5" fill="${s.color}"/>`);
    const ly = m.top + 16 + i * 20;
    out.push(`<line x1="${m.left + pw + 14}" y1="${ly}" x2="${m.left + pw + 40}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dash}/>`);
    out.push(`<text x="${m.left + pw + 46}" y="${ly}" dominant-baseline="middle">${s.name}</text>`);
  });
  for (const p of points) {
    const top = Math.max(p.miraQps, p.bareQps);
    out.push(`<text x="${x(p.recall).toFixed(1)}" y="${(y(top) - 10).toFixed(1)}" text-anchor="middle" fill="#555">ef ${p.ef}</text>`);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
    for (const mult of [1, 2, 5]) {
      const v = mult * 10 ** e;
      if (Math.log10(v) >= lo - 1e-9 && Math.log10(v) <= hi + 1e-9) ticks.push(v);
    }
  }
  return ticks;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
