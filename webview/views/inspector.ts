/** The inspector: summary, actions, loralib editor, heatmap, per-layer table and spectrum (or a plain tensor list). */
import type { InspectReport, LayerReport, TensorRow } from '../../src/core';
import type { InspectorAction, PersistedState } from '../../src/protocol/messages';
import type { LoralibFields } from '../model';
import {
  fmtBytes, fmtCount, gridTemplate, heatmapGrid, isLoralib, LAYER_COLUMNS, loralibEdit, loralibInitialFields, maskChips,
  needsLoralibEditor, rangeText, TENSOR_COLUMNS, type Column,
} from '../model';
import { clear, h } from '../dom';
import { post, saveState } from '../rpc';
import { t } from '../strings';
import { renderHeatmap } from './heatmap';
import { renderSpectrum } from './spectrum';
import { VirtualTable } from './virtualTable';


export class InspectorView {
  private report: InspectReport | null = null;
  private baseLabel: string | null = null;
  private layerTable: VirtualTable<LayerReport> | null = null;
  private tensorTable: VirtualTable<TensorRow> | null = null;
  private readonly spectrum = h('section', { class: 'panel spectrum', 'data-testid': 'spectrum' });
  private state: Omit<PersistedState, 'protocolVersion'>;
  private saveTimer = 0;
  /**
   * loralib fields the user has edited but not saved. A refresh (the config watcher firing after a save, a trainer
   * rewriting the checkpoint) re-renders the editor; an edit in progress survives it unless the new report now
   * says the same thing.
   */
  private loralibDraft: Partial<LoralibFields> = {};

  constructor(private readonly root: HTMLElement, restored: PersistedState | null) {
    this.state = restored ?? { filter: '', sortKey: null, sortDesc: false, selected: null, scrollTop: 0 };
  }

  show(report: InspectReport, baseLabel: string | null): void {
    // Keep the user's place across refreshes (file changed, config saved, base linked).
    const table = this.layerTable ?? this.tensorTable;
    if (table) this.captureState(table);
    this.report = report;
    this.baseLabel = baseLabel;
    this.render();
  }

  private captureState(table: Pick<VirtualTable<unknown>, 'filter' | 'sortKey' | 'sortDesc' | 'selected' | 'scrollTop'>): void {
    this.state = { filter: table.filter, sortKey: table.sortKey, sortDesc: table.sortDesc, selected: table.selected, scrollTop: table.scrollTop };
  }

  private persist = (): void => {
    const table = this.layerTable ?? this.tensorTable;
    if (!table) return;
    this.captureState(table);
    // Scrolling fires often; setState serializes, so batch it.
    window.clearTimeout(this.saveTimer);
    this.saveTimer = window.setTimeout(() => saveState(this.state), 200);
  };

  private render(): void {
    const r = this.report!;
    clear(this.root);
    this.root.setAttribute('aria-busy', 'false');
    this.layerTable = null;
    this.tensorTable = null;
    this.root.append(this.renderSummary(r));
    if (r.kind === 'adapter') {
      this.root.append(this.renderActions());
      if (isLoralib(r.format)) this.root.append(this.renderLoralibEditor(r));
    }
    const filter = h('input', {
      type: 'search',
      class: 'filter',
      'data-testid': 'filter',
      placeholder: r.kind === 'adapter' ? t('Filter modules (e.g. q_proj layers.1)') : t('Filter tensors'),
      'aria-label': t('Filter'),
      value: this.state.filter,
    });
    if (r.kind === 'adapter') {
      const columns = LAYER_COLUMNS.filter((c) => c.key !== 'rel' || r.basePath !== null || r.layers.some((l) => l.relNorm !== null));
      const table = new VirtualTable<LayerReport>({
        columns,
        rowTestId: 'layer-row',
        keyOf: (l) => l.module,
        filterText: (l) => `${l.module} ${l.kind} ${l.baseKey ?? ''}`,
        renderCell: renderLayerCell,
        gridTemplate: gridTemplate(columns),
        onSelect: (l) => renderSpectrum(this.spectrum, l),
        onStateChange: this.persist,
        label: t('Adapter layers'),
      });
      this.layerTable = table;
      this.applyState(table);
      table.setRows(r.layers);
      filter.addEventListener('input', () => table.setFilter(filter.value));
      const heat = renderHeatmap(
        heatmapGrid(r.layers.map((l) => ({ module: l.module, value: l.normDelta ?? l.normBA }))),
        { testId: 'heatmap', title: t('‖ΔW‖ by layer and module'), valueLabel: '‖ΔW‖', onPick: (m) => table.select(m, true) },
      );
      this.root.append(
        h('div', { class: 'split' }, heat, this.spectrum),
        h('section', { class: 'panel' }, h('div', { class: 'toolbar' }, h('h3', {}, t('Layers')), filter), table.el),
      );
      renderSpectrum(this.spectrum, r.layers.find((l) => l.module === this.state.selected) ?? null);
      if (r.replacedTensors.length > 0) this.root.append(renderReplaced(r));
    } else {
      const table = new VirtualTable<TensorRow>({
        columns: TENSOR_COLUMNS,
        rowTestId: 'tensor-row',
        keyOf: (x) => x.name,
        gridTemplate: gridTemplate(TENSOR_COLUMNS),
        onStateChange: this.persist,
        label: t('Tensors'),
      });
      this.tensorTable = table;
      this.applyState(table);
      table.setRows(r.tensors);
      filter.addEventListener('input', () => table.setFilter(filter.value));
      this.root.append(h('section', { class: 'panel' }, h('div', { class: 'toolbar' }, h('h3', {}, t('Tensors')), filter), table.el));
    }
  }

  private applyState<T>(table: VirtualTable<T>): void {
    table.filter = this.state.filter;
    table.sortKey = this.state.sortKey;
    table.sortDesc = this.state.sortDesc;
    table.selected = this.state.selected;
    const top = this.state.scrollTop;
    requestAnimationFrame(() => (table.scrollTop = top));
  }

  private renderSummary(r: InspectReport): HTMLElement {
    const L = r.layers;
    const dtypes = [...new Set((L.length ? L.map((l) => l.dtype) : r.tensors.map((x) => x.dtype)) as string[])].join(', ');
    const rules = [...new Set(L.map((l) => l.scalingRule))].join(', ');
    const items: [string, string][] = [[t('Format'), r.format]];
    if (r.kind === 'adapter') {
      items.push(
        [t('Base model'), r.baseModel ?? '—'],
        [t('Linked base'), this.baseLabel ?? t('none')],
        [t('Layers'), String(L.length)],
        ['r', rangeText(L.map((l) => l.r))],
        ['α', L.some((l) => l.alpha === null) ? `${rangeText(L.map((l) => l.alpha))} (${t('unknown for some layers')})` : rangeText(L.map((l) => l.alpha))],
        [t('Scaling'), `${rangeText(L.map((l) => l.scaling))} (${rules || '—'})`],
      );
    } else {
      items.push([t('Tensors'), r.tensors.length.toLocaleString()]);
    }
    items.push([t('Parameters'), fmtCount(r.parameterCount)], ['dtype', dtypes || '—'], [t('File size'), fmtBytes(r.fileSize)]);
    const dl = h('dl', { class: 'summary-grid' });
    for (const [k, v] of items) dl.append(h('dt', {}, k), h('dd', { title: v }, v));
    const heading = r.kind === 'adapter' ? t('LoRA adapter') : t('Checkpoint (no LoRA layers found)');
    const section = h('section', { class: 'panel summary', 'data-testid': 'summary' }, h('h2', {}, `${heading} · ${r.format}`), dl);
    if (r.warnings.length > 0) {
      const ul = h('ul', { class: 'warnings' });
      for (const w of r.warnings) ul.append(h('li', { 'data-code': w.code }, w.module ? `${w.module}: ${w.message}` : w.message));
      section.append(h('h3', {}, `${t('Warnings')} (${r.warnings.length})`), ul);
    }
    return section;
  }

  private renderActions(): HTMLElement {
    const bar = h('div', { class: 'actions', role: 'toolbar', 'aria-label': t('Actions') });
    const add = (action: InspectorAction, testId: string, label: string, secondary = true) => {
      const b = h('vscode-button', { 'data-testid': testId, secondary });
      b.textContent = label;
      b.addEventListener('click', () => post({ type: 'action', action }));
      bar.append(b);
    };
    add('linkBase', 'action-link-base', t('Link base model…'));
    add('merge', 'action-merge', t('Merge…'), false);
    add('parity', 'action-parity', t('Run parity check…'));
    add('compare', 'action-compare', t('Compare with…'));
    return bar;
  }

  private renderLoralibEditor(r: InspectReport): HTMLElement {
    // Every field starts from what the report uses now; only fields the user changes are written (loralibEdit).
    const initial = loralibInitialFields(r.layers);
    const draft = this.loralibDraft;
    // Typing an inferred mask confirms it, so that draft stays until the file states the mask.
    const maskInferred = r.layers.some((l) => l.enableLora !== null && l.sources.enableLora === 'inferred');
    if (draft.alpha !== undefined && draft.alpha.trim() === initial.alpha) delete draft.alpha;
    if (draft.mask !== undefined && draft.mask.trim() === initial.mask && !maskInferred) delete draft.mask;
    if (draft.fanInFanOut === initial.fanInFanOut) delete draft.fanInFanOut;
    const hasMask = r.layers.some((l) => l.enableLora !== null);
    const alpha = h('input', {
      type: 'number', min: '0', step: 'any', 'data-testid': 'alpha-input', id: 'alpha-input',
      value: draft.alpha ?? initial.alpha, placeholder: t('unknown, e.g. 16'),
    });
    const mask = h('input', {
      type: 'text', 'data-testid': 'mask-input', id: 'mask-input', value: draft.mask ?? initial.mask,
      placeholder: '1,0,1', disabled: !hasMask,
    });
    const fifo = h('input', { type: 'checkbox', id: 'fifo-input', 'data-testid': 'fifo-input', checked: draft.fanInFanOut ?? initial.fanInFanOut });
    alpha.addEventListener('input', () => (draft.alpha = alpha.value));
    mask.addEventListener('input', () => (draft.mask = mask.value));
    fifo.addEventListener('change', () => (draft.fanInFanOut = fifo.checked));
    const error = h('p', { class: 'error-text', role: 'alert', 'data-testid': 'config-error' });
    const save = h('vscode-button', { 'data-testid': 'save-config' });
    save.textContent = t('Save to lora_config.json');
    save.addEventListener('click', () => {
      error.textContent = '';
      error.className = 'error-text';
      const current = { alpha: alpha.value, mask: hasMask ? mask.value : '', fanInFanOut: fifo.checked };
      const edit = loralibEdit(initial, current, { confirmMask: maskInferred && draft.mask !== undefined });
      if (!edit.ok) {
        // "Nothing to save" is information, not a mistake.
        if (edit.nothingChanged) error.className = 'muted';
        error.textContent = t(edit.error);
        return;
      }
      post({ type: 'saveLoralibConfig', alpha: edit.alpha, enableLora: edit.enableLora, fanInFanOut: edit.fanInFanOut });
    });
    const needs = needsLoralibEditor(r.format, r.layers);
    return h(
      'section',
      { class: `panel loralib${needs ? ' attention' : ''}` },
      h('h3', {}, t('loralib settings')),
      h('p', { class: 'muted' }, needs
        ? t('loralib checkpoints store neither α nor the enable_lora mask. State them here; they are saved to lora_config.json beside the checkpoint.')
        : t('Values from lora_config.json beside the checkpoint.')),
      h('div', { class: 'form-row' },
        h('label', { for: 'alpha-input' }, 'lora_alpha'), alpha,
        h('label', { for: 'mask-input' }, 'enable_lora'), mask,
        h('label', { for: 'fifo-input', class: 'check' }, fifo, ' fan_in_fan_out'),
        save),
      error,
    );
  }
}

function renderLayerCell(col: Column<LayerReport>, l: LayerReport): Node | string {
  if (col.key === 'mask') {
    if (!l.enableLora) return '—';
    const span = h('span', { class: `chips${l.sources.enableLora === 'inferred' ? ' inferred' : ''}` });
    maskChips(l.enableLora).forEach((c, i) => {
      if (i > 0) span.append(' ');
      span.append(h('span', { class: `chip ${c.on ? 'on' : 'off'}` }, `${c.label} ${c.on ? '✓' : '✗'}`));
    });
    return span;
  }
  if (col.key === 'alpha' && l.sources.alpha !== 'declared') {
    return h('span', { class: 'provenance', title: `α ${l.sources.alpha}` }, col.text(l));
  }
  return col.text(l);
}

function renderReplaced(r: InspectReport): HTMLElement {
  const ul = h('ul', { class: 'replaced' });
  for (const x of r.replacedTensors.slice(0, 200)) {
    ul.append(h('li', {}, `${x.key} → ${x.baseKey ?? '?'} (${x.reason}, ${x.dtype} [${x.shape.join(', ')}])`));
  }
  if (r.replacedTensors.length > 200) ul.append(h('li', { class: 'muted' }, `… ${r.replacedTensors.length - 200} more`));
  return h('section', { class: 'panel' }, h('h3', {}, `${t('Tensors replaced in the base')} (${r.replacedTensors.length})`), ul);
}
