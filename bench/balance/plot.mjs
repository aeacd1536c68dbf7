/**
 * The plot of site utilization over time, one panel per policy, as SVG rendered to PNG with
 * @resvg/resvg-js (a dev dependency: a maintained renderer shipped as an npm package; text uses
 * the system's fonts, e.g. Debian's fonts-dejavu-core).
 */
import { Resvg } from '@resvg/resvg-js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c'];

export function renderPlot(series, { ids, nominal }) {
  const width = 1000;
  const panelH = 150;
  const top = 62;
  const left = 60;
  const right = 20;
  const gap = 40;
  const height = top + series.length * (panelH + gap) + 10;
  const yMin = 0.4;
  const yMax = 1.4;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="bold">Site utilization over time (1 s samples): 1000/1000/500 sessions, 70 % load, reports every 1 s, 2 s late</text>`,
  ];
  ids.forEach((id, i) => parts.push(`<rect x="${left + i * 130}" y="${top - 24}" width="14" height="3" fill="${COLORS[i]}"/><text x="${left + 18 + i * 130}" y="${top - 19}">${id}</text>`));
  parts.push(`<line x1="${left + 3 * 130}" x2="${left + 3 * 130 + 14}" y1="${top - 23}" y2="${top - 23}" stroke="#000" stroke-dasharray="4 3"/><text x="${left + 3 * 130 + 18}" y="${top - 19}">ideal (${Math.round(nominal * 100)} %)</text>`);
  series.forEach((s, p) => {
    const y0 = top + p * (panelH + gap) + 10;
    const w = width - left - right;
    const n = s.samples.length;
    const x = (k) => left + (k / (n - 1)) * w;
    const y = (u) => y0 + panelH - ((Math.min(yMax, Math.max(yMin, u)) - yMin) / (yMax - yMin)) * panelH;
    parts.push(`<text x="${left}" y="${y0 - 4}" font-weight="bold">${escape(s.label)}</text>`);
    parts.push(`<rect x="${left}" y="${y0}" width="${w}" height="${panelH}" fill="none" stroke="#999"/>`);
    for (const u of [0.6, 0.8, 1.0, 1.2]) {
      parts.push(`<line x1="${left}" x2="${left + w}" y1="${y(u)}" y2="${y(u)}" stroke="#eee"/>`);
      parts.push(`<text x="${left - 6}" y="${y(u) + 4}" text-anchor="end" fill="#555">${Math.round(u * 100)}%</text>`);
    }
    parts.push(`<line x1="${left}" x2="${left + w}" y1="${y(nominal)}" y2="${y(nominal)}" stroke="#000" stroke-dasharray="4 3"/>`);
    for (let i = 0; i < ids.length; i++) {
      const pts = s.samples.map((u, k) => `${x(k).toFixed(1)},${y(u[i]).toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${pts}" fill="none" stroke="${COLORS[i]}" stroke-width="1.3"/>`);
    }
    for (let k = 0; k <= n; k += 60) parts.push(`<text x="${x(Math.min(k, n - 1))}" y="${y0 + panelH + 14}" text-anchor="middle" fill="#555">${k} s</text>`);
  });
  parts.push('</svg>');
  return new Resvg(parts.join('\n'), { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
}

function escape(text) {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/`/g, '');
}
