/** Plain-text tables for terminals: right-align numbers, truncate long module names from the left (the tail is what differs). */
export interface Column<T> {
  title: string;
  get: (row: T) => string;
  align?: 'left' | 'right';
  max?: number;
}

export function renderTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((r) => columns.map((c) => clip(c.get(r), c.max)));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) =>
    vals.map((v, i) => (columns[i]!.align === 'right' ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(columns.map((c) => c.title)), line(widths.map((w) => '─'.repeat(w))), ...cells.map(line)].join('\n');
}

function clip(s: string, max: number | undefined): string {
  if (!max || s.length <= max) return s;
  return '…' + s.slice(s.length - max + 1);
}

/** 3 significant digits, no exponent for ordinary magnitudes. */
export function fmtNum(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined) return '—';
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e6 || a < 1e-4) return x.toExponential(digits - 1);
  if (Number.isInteger(x)) return String(x);
  return String(Number(x.toPrecision(digits)));
}

export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** enable_lora as block chips: q ✓ k ✗ v ✓ for fused qkv, else 1/0 per block. */
export function fmtMask(mask: boolean[] | null): string {
  if (!mask) return '—';
  if (mask.length === 3) return ['q', 'k', 'v'].map((n, i) => `${n}${mask[i] ? '✓' : '✗'}`).join(' ');
  return mask.map((b) => (b ? '1' : '0')).join(',');
}
