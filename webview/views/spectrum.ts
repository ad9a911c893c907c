/** Singular-value spectrum of one layer as an SVG bar chart. */
import type { LayerReport } from '../../src/core';
import { fmtNum } from '../model';
import { clear, h, s } from '../dom';
import { t } from '../strings';

const W = 360;
const H = 140;
const PAD_L = 48;
const PAD_B = 18;

export function renderSpectrum(host: HTMLElement, layer: LayerReport | null): void {
  clear(host);
  host.append(h('h3', {}, t('Singular values')));
  if (!layer) {
    host.append(h('p', { class: 'muted' }, t('Select a layer to see the singular values of its ΔW.')));
    return;
  }
  const sv = layer.singularValues;
  host.append(
    h('p', { class: 'muted' }, `${layer.module} · r ${layer.r} · ${t('effective rank')} ${fmtNum(layer.effectiveRank)}${layer.scaling === null ? ` · ${t('unscaled (α unknown)')}` : ''}`),
  );
  if (sv.length === 0) {
    host.append(h('p', { class: 'muted' }, t('No singular values (statistics were not computed).')));
    return;
  }
  const max = Math.max(...sv.filter(Number.isFinite), 0) || 1;
  const bw = (W - PAD_L) / sv.length;
  const svg = s('svg', { class: 'spectrum-svg', width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${sv.length} singular values, largest ${fmtNum(max)}` });
  svg.append(s('line', { class: 'axis', x1: PAD_L, y1: 4, x2: PAD_L, y2: H - PAD_B }));
  svg.append(s('line', { class: 'axis', x1: PAD_L, y1: H - PAD_B, x2: W, y2: H - PAD_B }));
  svg.append(s('text', { class: 'axis-label', x: PAD_L - 4, y: 12 }, fmtNum(max)));
  svg.append(s('text', { class: 'axis-label', x: PAD_L - 4, y: H - PAD_B }, '0'));
  sv.forEach((v, i) => {
    const bh = Number.isFinite(v) ? (Math.max(0, v) / max) * (H - PAD_B - 6) : 0;
    svg.append(
      s('rect', { class: 'bar', x: PAD_L + i * bw + Math.min(1, bw * 0.1), y: H - PAD_B - bh, width: Math.max(1, bw - Math.min(2, bw * 0.2)), height: bh, 'data-value': v },
        s('title', {}, `σ${i + 1} = ${fmtNum(v, 4)}`)),
    );
  });
  svg.append(s('text', { class: 'axis-label start', x: PAD_L, y: H - 4 }, 'σ1'));
  svg.append(s('text', { class: 'axis-label end', x: W, y: H - 4 }, `σ${sv.length}`));
  host.append(svg);
}
