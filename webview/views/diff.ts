/** Adapter diff: summary, per-module comparison table and a cosine-similarity heatmap. */
import type { DiffModule, DiffReport } from '../../src/core';
import { DIFF_COLUMNS, fmtNum, gridTemplate, heatmapGrid } from '../model';
import { clear, h } from '../dom';
import { t } from '../strings';
import { renderHeatmap } from './heatmap';
import { VirtualTable } from './virtualTable';

export function renderDiff(root: HTMLElement, report: DiffReport, labelA: string, labelB: string): void {
  clear(root);
  root.setAttribute('aria-busy', 'false');
  const s = report.summary;
  const dl = h('dl', { class: 'summary-grid' });
  const items: [string, string][] = [
    ['A', labelA],
    ['B', labelB],
    [t('Modules in both'), String(s.both)],
    [t('Only in A'), String(s.onlyA)],
    [t('Only in B'), String(s.onlyB)],
    [t('Mean cosine'), fmtNum(s.meanCosine)],
    [t('Min cosine'), fmtNum(s.minCosine)],
    [t('r changed'), String(s.rankChanged)],
    [t('α changed'), String(s.alphaChanged)],
  ];
  for (const [k, v] of items) dl.append(h('dt', {}, k), h('dd', { title: v }, v));
  root.append(h('section', { class: 'panel summary', 'data-testid': 'diff-summary' }, h('h2', {}, t('Adapter comparison')), dl));

  const table = new VirtualTable<DiffModule>({
    columns: DIFF_COLUMNS,
    rowTestId: 'diff-row',
    keyOf: (d) => d.module,
    filterText: (d) => `${d.module} ${d.status}`,
    gridTemplate: gridTemplate(DIFF_COLUMNS),
    label: t('Modules'),
  });
  table.setRows(report.modules);
  const filter = h('input', { type: 'search', class: 'filter', 'data-testid': 'filter', placeholder: t('Filter modules'), 'aria-label': t('Filter') });
  filter.addEventListener('input', () => table.setFilter(filter.value));
  const heat = renderHeatmap(
    heatmapGrid(report.modules.filter((m) => m.status === 'both').map((m) => ({ module: m.module, value: m.cosine }))),
    { testId: 'cosine-heatmap', title: t('Cosine similarity by layer and module'), valueLabel: 'cos', domain: [-1, 1], onPick: (m) => table.select(m, true) },
  );
  root.append(heat, h('section', { class: 'panel' }, h('div', { class: 'toolbar' }, h('h3', {}, t('Modules')), filter), table.el));
}
