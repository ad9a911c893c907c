/**
 * View models of the webviews: pure functions over report data, no DOM, so unit tests run them in Node.
 */
import type { DiffModule, LayerReport, TensorRow } from '../src/core';

// ---------------------------------------------------------------- enable_lora masks

export interface MaskChip {
  label: string;
  on: boolean;
}

/** Fused qkv (3 blocks) reads best as q/k/v; other lengths get block indices. */
export function maskChips(mask: readonly boolean[] | null): MaskChip[] {
  if (!mask) return [];
  const names = mask.length === 3 ? ['q', 'k', 'v'] : mask.length === 2 ? ['k', 'v'] : null;
  return mask.map((on, i) => ({ label: names ? names[i]! : String(i), on }));
}

export function maskText(mask: readonly boolean[] | null): string {
  return maskChips(mask)
    .map((c) => `${c.label} ${c.on ? '✓' : '✗'}`)
    .join(' ');
}

/** "1,0,1" / "true false true" / "q v of 3" is not supported: only 0/1/true/false separated by commas or spaces. */
export function parseMask(text: string): boolean[] | null {
  const parts = text.split(/[\s,]+/).filter((p) => p !== '');
  if (parts.length === 0 || parts.length > 64) return null;
  const out: boolean[] = [];
  for (const p of parts) {
    const t = p.toLowerCase();
    if (t === '1' || t === 'true') out.push(true);
    else if (t === '0' || t === 'false') out.push(false);
    else return null;
  }
  return out;
}

export const maskToText = (mask: readonly boolean[] | null) => (mask ? mask.map((b) => (b ? '1' : '0')).join(',') : '');

// ---------------------------------------------------------------- heatmap

/** Dotted names split on "."; kohya names (no dots) on "_". */
const segments = (module: string) => module.split(module.includes('.') ? '.' : '_');

/** First path segment that is a plain integer ("model.layers.12.self_attn.q_proj" → 12), else null. */
export function layerIndexOf(module: string): number | null {
  for (const seg of segments(module)) if (/^\d+$/.test(seg)) return Number(seg);
  return null;
}

/**
 * Last path segment ("…self_attn.q_proj" → "q_proj"). kohya names have no dots: everything after the last
 * numbered segment ("…_blocks_0_attn1_to_q" → "attn1_to_q"), so one column still means one kind of module.
 */
export function moduleTypeOf(module: string): string {
  if (module.includes('.')) return module.slice(module.lastIndexOf('.') + 1);
  const segs = segments(module);
  let last = -1;
  segs.forEach((s, i) => {
    if (/^\d+$/.test(s)) last = i;
  });
  return last >= 0 && last < segs.length - 1 ? segs.slice(last + 1).join('_') : module;
}

export interface HeatCell {
  value: number;
  modules: string[];
}

export interface HeatmapGrid {
  /** Row labels: layer indices ascending, then "other" (modules without a number) when present. */
  rows: (number | null)[];
  cols: string[];
  /** cells[row][col]; several modules in one cell (e.g. two encoders) keep the largest value. */
  cells: (HeatCell | null)[][];
  min: number;
  max: number;
}

export function heatmapGrid(items: readonly { module: string; value: number | null }[]): HeatmapGrid {
  const rowSet = new Set<number | null>();
  const colSet = new Set<string>();
  for (const it of items) {
    rowSet.add(layerIndexOf(it.module));
    colSet.add(moduleTypeOf(it.module));
  }
  const rows = [...rowSet].sort((a, b) => (a === null ? 1 : b === null ? -1 : a - b));
  const cols = [...colSet].sort();
  const ri = new Map(rows.map((r, i) => [r, i]));
  const ci = new Map(cols.map((c, i) => [c, i]));
  const cells: (HeatCell | null)[][] = rows.map(() => cols.map(() => null));
  let min = Infinity;
  let max = -Infinity;
  for (const it of items) {
    if (it.value === null || !Number.isFinite(it.value)) continue;
    const row = cells[ri.get(layerIndexOf(it.module))!]!;
    const c = ci.get(moduleTypeOf(it.module))!;
    const cell = row[c];
    if (cell) {
      cell.modules.push(it.module);
      cell.value = Math.max(cell.value, it.value);
    } else {
      row[c] = { value: it.value, modules: [it.module] };
    }
    min = Math.min(min, it.value);
    max = Math.max(max, it.value);
  }
  if (min === Infinity) {
    min = 0;
    max = 0;
  }
  return { rows, cols, cells, min, max };
}

/** A perceptually ordered ramp (viridis stops) that reads on light and dark themes alike. */
const RAMP = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
] as const;

export function rampColor(t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const a = RAMP[i]!;
  const b = RAMP[i + 1]!;
  const c = (k: 0 | 1 | 2) => Math.round(a[k] + (b[k] - a[k]) * f);
  return `rgb(${c(0)}, ${c(1)}, ${c(2)})`;
}

export const normalize = (v: number, min: number, max: number) => (max > min ? (v - min) / (max - min) : 0.5);

// ---------------------------------------------------------------- virtual scrolling

export interface VirtualWindow {
  /** First and one-past-last row index to render. */
  start: number;
  end: number;
  /** Pixel offset of row `start`. */
  offset: number;
  totalHeight: number;
}

/** Rows visible in a fixed-row-height scroller, plus `overscan` rows each side so fast scrolls do not flash. */
export function virtualWindow(scrollTop: number, viewportHeight: number, rowHeight: number, total: number, overscan = 8): VirtualWindow {
  const totalHeight = total * rowHeight;
  if (total === 0 || rowHeight <= 0) return { start: 0, end: 0, offset: 0, totalHeight: Math.max(0, totalHeight) };
  const top = Math.min(Math.max(0, scrollTop), Math.max(0, totalHeight - viewportHeight));
  const first = Math.floor(top / rowHeight);
  const visible = Math.ceil(Math.max(0, viewportHeight) / rowHeight) + 1;
  const start = Math.max(0, first - overscan);
  const end = Math.min(total, first + visible + overscan);
  return { start, end, offset: start * rowHeight, totalHeight };
}

// ---------------------------------------------------------------- formatting

export function fmtNum(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined) return '—';
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  if (Number.isInteger(x) && Math.abs(x) < 1e6) return String(x);
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(digits - 1);
  return String(Number(x.toPrecision(digits)));
}

export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

export function fmtCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

// ---------------------------------------------------------------- sort / filter

export interface Column<T> {
  key: string;
  label: string;
  /** Full name for the header tooltip when the label is abbreviated ("fifo" → fan_in_fan_out). */
  title?: string;
  /** Sort key; null sorts last in either direction. */
  value: (row: T) => number | string | null;
  text: (row: T) => string;
  numeric: boolean;
  /** CSS grid track: wide enough for the header and typical values; the first column takes the rest. */
  width: string;
}

/** Header and rows share one template, so every row lines up with the header. */
export function gridTemplate(columns: readonly { width: string }[]): string {
  return columns.map((c) => c.width).join(' ');
}

/** Case-insensitive AND of whitespace-separated terms over the given text of each row. */
export function filterRows<T>(rows: readonly T[], query: string, text: (row: T) => string): T[] {
  const terms = query.toLowerCase().split(/\s+/).filter((t) => t !== '');
  if (terms.length === 0) return [...rows];
  return rows.filter((r) => {
    const t = text(r).toLowerCase();
    return terms.every((term) => t.includes(term));
  });
}

/** Stable sort; nulls always last; strings compare with numeric collation ("h.2" before "h.10"). */
export function sortRows<T>(rows: readonly T[], value: (row: T) => number | string | null, desc: boolean): T[] {
  const collator = new Intl.Collator(undefined, { numeric: true });
  const keyed = rows.map((row, i) => ({ row, i, v: value(row) }));
  keyed.sort((a, b) => {
    if (a.v === null || b.v === null) return a.v === b.v ? a.i - b.i : a.v === null ? 1 : -1;
    let c = typeof a.v === 'number' && typeof b.v === 'number' ? a.v - b.v : collator.compare(String(a.v), String(b.v));
    if (Number.isNaN(c)) c = 0;
    if (desc) c = -c;
    return c !== 0 ? c : a.i - b.i;
  });
  return keyed.map((k) => k.row);
}

export const LAYER_COLUMNS: Column<LayerReport>[] = [
  { width: 'minmax(16em, 3fr)', key: 'module', label: 'Module', numeric: false, value: (l) => l.module, text: (l) => l.module },
  { width: '9em', key: 'kind', label: 'Kind', numeric: false, value: (l) => l.kind + (l.dora ? ' DoRA' : ''), text: (l) => l.kind + (l.dora ? ' · DoRA' : '') },
  { width: '3em', key: 'r', label: 'r', numeric: true, value: (l) => l.r, text: (l) => String(l.r) },
  { width: '4em', key: 'alpha', label: 'α', numeric: true, value: (l) => l.alpha, text: (l) => fmtNum(l.alpha) + (l.sources.alpha === 'unknown' ? ' ?' : '') },
  { width: '5em', key: 'scaling', label: 'Scaling', numeric: true, value: (l) => l.scaling, text: (l) => fmtNum(l.scaling) },
  { width: '9em', key: 'mask', label: 'enable_lora', numeric: false, value: (l) => maskToText(l.enableLora) || null, text: (l) => maskText(l.enableLora) },
  { width: '3.5em', key: 'fifo', label: 'fifo', title: 'fan_in_fan_out', numeric: false, value: (l) => (l.fanInFanOut ? 'yes' : 'no'), text: (l) => (l.fanInFanOut ? 'yes' : 'no') },
  { width: '8em', key: 'shape', label: 'in × out', numeric: true, value: (l) => l.inFeatures * l.outFeatures, text: (l) => `${l.inFeatures} × ${l.outFeatures}` },
  { width: '4.5em', key: 'dtype', label: 'dtype', numeric: false, value: (l) => l.dtype, text: (l) => l.dtype },
  { width: '6em', key: 'norm', label: '‖ΔW‖', numeric: true, value: (l) => l.normDelta ?? l.normBA, text: (l) => (l.normDelta !== null ? fmtNum(l.normDelta) : `${fmtNum(l.normBA)} (BA)`) },
  { width: '7em', key: 'rel', label: '‖ΔW‖/‖W₀‖', numeric: true, value: (l) => l.relNorm, text: (l) => fmtNum(l.relNorm) },
  { width: '5.5em', key: 'erank', label: 'eff. rank', numeric: true, value: (l) => l.effectiveRank, text: (l) => fmtNum(l.effectiveRank, 3) },
];

export const TENSOR_COLUMNS: Column<TensorRow>[] = [
  { width: 'minmax(18em, 4fr)', key: 'name', label: 'Tensor', numeric: false, value: (t) => t.name, text: (t) => t.name },
  { width: '6em', key: 'dtype', label: 'dtype', numeric: false, value: (t) => t.dtype, text: (t) => t.dtype },
  { width: '12em', key: 'shape', label: 'Shape', numeric: true, value: (t) => t.shape.reduce((p, x) => p * x, 1), text: (t) => `[${t.shape.join(', ')}]` },
  { width: '7em', key: 'size', label: 'Size', numeric: true, value: (t) => t.byteLength, text: (t) => fmtBytes(t.byteLength) },
];

export const DIFF_COLUMNS: Column<DiffModule>[] = [
  { width: 'minmax(16em, 3fr)', key: 'module', label: 'Module', numeric: false, value: (d) => d.module, text: (d) => d.module },
  { width: '5em', key: 'status', label: 'In', numeric: false, value: (d) => d.status, text: (d) => (d.status === 'both' ? 'A, B' : d.status === 'only-a' ? 'only A' : 'only B') },
  { width: '6em', key: 'r', label: 'r A → B', numeric: false, value: (d) => changeText(d.rA, d.rB), text: (d) => changeText(d.rA, d.rB) },
  { width: '6em', key: 'alpha', label: 'α A → B', numeric: false, value: (d) => changeText(d.alphaA, d.alphaB), text: (d) => changeText(d.alphaA, d.alphaB) },
  { width: '6em', key: 'normA', label: '‖ΔW‖ A', numeric: true, value: (d) => d.normA, text: (d) => fmtNum(d.normA) },
  { width: '6em', key: 'normB', label: '‖ΔW‖ B', numeric: true, value: (d) => d.normB, text: (d) => fmtNum(d.normB) },
  { width: '5em', key: 'cosine', label: 'cosine', numeric: true, value: (d) => d.cosine, text: (d) => (d.shapeMismatch ? 'shape ≠' : fmtNum(d.cosine)) },
  { width: '8.5em', key: 'subspace', label: 'subspace sim.', numeric: true, value: (d) => d.subspaceSimilarity, text: (d) => fmtNum(d.subspaceSimilarity) },
];

export function changeText(a: number | null, b: number | null): string {
  if (a === null && b === null) return '—';
  if (a === null || b === null || a === b) return fmtNum(a ?? b);
  return `${fmtNum(a)} → ${fmtNum(b)}`;
}

// ---------------------------------------------------------------- summary

export function rangeText(xs: readonly (number | null)[]): string {
  const vals = [...new Set(xs.filter((x): x is number => x !== null))].sort((a, b) => a - b);
  if (vals.length === 0) return '—';
  if (vals.length <= 3) return vals.map((v) => fmtNum(v)).join(', ');
  return `${fmtNum(vals[0]!)}–${fmtNum(vals[vals.length - 1]!)}`;
}

/** loralib leaves α (and, for MergedLinear, the mask) to the user: offer the editor when either is a guess. */
export function needsLoralibEditor(format: string, layers: readonly LayerReport[]): boolean {
  if (format !== 'loralib' && format !== 'loralib-full') return false;
  return layers.some(
    (l) => l.sources.alpha === 'unknown' || l.sources.alpha === 'default' || (l.enableLora !== null && l.sources.enableLora === 'inferred'),
  );
}

export function isLoralib(format: string): boolean {
  return format === 'loralib' || format === 'loralib-full';
}

// ---------------------------------------------------------------- loralib settings editor

/** What the loralib editor's fields show: the values the report currently uses, inferred or declared. */
export interface LoralibFields {
  /** Text of the α field; empty when α is unknown. */
  alpha: string;
  /** Text of the mask field ("1,0,1"); empty when no layer has a mask. */
  mask: string;
  fanInFanOut: boolean;
}

export function loralibInitialFields(layers: readonly LayerReport[]): LoralibFields {
  const withAlpha = layers.find((l) => l.alpha !== null && l.sources.alpha !== 'unknown');
  const withMask = layers.find((l) => l.enableLora !== null);
  return {
    alpha: withAlpha ? String(withAlpha.alpha) : '',
    mask: withMask ? maskToText(withMask.enableLora) : '',
    fanInFanOut: layers[0]?.fanInFanOut ?? false,
  };
}

export type LoralibEdit =
  | { ok: true; alpha: number | null; enableLora: boolean[] | null; fanInFanOut: boolean | null }
  | { ok: false; error: string; nothingChanged?: true };

/**
 * The values to write: only the fields the user changed (null = leave the file as it is), so saving α never pins an
 * inferred mask or a default fan_in_fan_out that a linked base would have corrected. `confirmMask`: the user typed
 * in the mask field of an inferred mask, so even the same value is a statement worth saving (it ends the guess).
 */
export function loralibEdit(initial: LoralibFields, current: LoralibFields, { confirmMask = false } = {}): LoralibEdit {
  let alpha: number | null = null;
  const a = current.alpha.trim();
  if (a !== '' && a !== initial.alpha.trim()) {
    const v = Number(a);
    if (!(Number.isFinite(v) && v > 0)) return { ok: false, error: 'α must be a positive number.' };
    if (initial.alpha.trim() === '' || v !== Number(initial.alpha)) alpha = v;
  }
  let enableLora: boolean[] | null = null;
  const m = current.mask.trim();
  if (m !== '' && m !== initial.mask.trim()) {
    const parsed = parseMask(m);
    if (!parsed) return { ok: false, error: 'The mask is a list of 1/0 per output block, e.g. 1,0,1.' };
    if (maskToText(parsed) !== initial.mask.trim()) enableLora = parsed;
  }
  if (enableLora === null && confirmMask && m !== '') {
    const parsed = parseMask(m);
    if (!parsed) return { ok: false, error: 'The mask is a list of 1/0 per output block, e.g. 1,0,1.' };
    enableLora = parsed;
  }
  const fanInFanOut = current.fanInFanOut !== initial.fanInFanOut ? current.fanInFanOut : null;
  if (alpha === null && enableLora === null && fanInFanOut === null) {
    return { ok: false, error: 'Nothing to save: change a value first.', nothingChanged: true };
  }
  return { ok: true, alpha, enableLora, fanInFanOut };
}
