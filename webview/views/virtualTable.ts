/**
 * A sortable, filterable table that renders only the rows in view (fixed row height), so 2,000+ layers scroll
 * smoothly. vscode-table renders every row, hence this. Rows are CSS-grid divs with role=row for a11y.
 */
import { filterRows, sortRows, virtualWindow, type Column } from '../model';
import { clear, h } from '../dom';

export const ROW_HEIGHT = 24;

export interface VirtualTableOptions<T> {
  columns: Column<T>[];
  /** data-testid of each row (layer-row, tensor-row, diff-row). */
  rowTestId: string;
  keyOf: (row: T) => string;
  /** Text a filter term is matched against (defaults to the first column). */
  filterText?: (row: T) => string;
  /** Custom cell content (e.g. mask chips); falls back to column.text. */
  renderCell?: (col: Column<T>, row: T) => Node | string;
  gridTemplate: string;
  onSelect?: (row: T | null) => void;
  onStateChange?: () => void;
  label: string;
}

export class VirtualTable<T> {
  readonly el: HTMLElement;
  private readonly header: HTMLElement;
  private readonly scroller: HTMLElement;
  private readonly spacer: HTMLElement;
  private readonly body: HTMLElement;
  private readonly count: HTMLElement;
  private all: T[] = [];
  private view: T[] = [];
  private frame = 0;
  filter = '';
  sortKey: string | null = null;
  sortDesc = false;
  selected: string | null = null;

  constructor(private readonly o: VirtualTableOptions<T>) {
    this.header = h('div', { class: 'vt-row vt-header', role: 'row' });
    this.header.style.gridTemplateColumns = o.gridTemplate;
    this.body = h('div', { class: 'vt-body', role: 'rowgroup' });
    this.spacer = h('div', { class: 'vt-spacer' }, this.body);
    this.scroller = h('div', { class: 'vt-scroller', tabindex: 0, role: 'presentation' }, this.spacer);
    this.count = h('div', { class: 'vt-count', 'aria-live': 'polite' });
    this.el = h('div', { class: 'vt', role: 'grid', 'aria-label': o.label }, this.header, this.scroller, this.count);
    this.scroller.addEventListener('scroll', () => this.schedule());
    this.scroller.addEventListener('keydown', (e) => this.onKey(e));
    new ResizeObserver(() => this.schedule()).observe(this.scroller);
    this.renderHeader();
  }

  setRows(rows: T[]): void {
    this.all = rows;
    this.recompute();
  }

  setFilter(q: string): void {
    this.filter = q;
    this.recompute();
    this.o.onStateChange?.();
  }

  get scrollTop(): number {
    return this.scroller.scrollTop;
  }

  set scrollTop(v: number) {
    this.scroller.scrollTop = v;
    this.schedule();
  }

  visibleRows(): readonly T[] {
    return this.view;
  }

  select(key: string | null, reveal = false): void {
    this.selected = key;
    const row = key === null ? null : this.all.find((r) => this.o.keyOf(r) === key) ?? null;
    if (reveal && row) {
      const i = this.view.indexOf(row);
      if (i >= 0) {
        const top = i * ROW_HEIGHT;
        if (top < this.scroller.scrollTop || top + ROW_HEIGHT > this.scroller.scrollTop + this.scroller.clientHeight) {
          this.scroller.scrollTop = Math.max(0, top - this.scroller.clientHeight / 2);
        }
      }
    }
    this.render();
    this.o.onSelect?.(row);
    this.o.onStateChange?.();
  }

  private recompute(): void {
    const text = this.o.filterText ?? ((r: T) => this.o.columns[0]!.text(r));
    let rows = filterRows(this.all, this.filter, text);
    const col = this.o.columns.find((c) => c.key === this.sortKey);
    if (col) rows = sortRows(rows, col.value, this.sortDesc);
    this.view = rows;
    const n = (x: number) => x.toLocaleString();
    this.count.textContent = rows.length === this.all.length ? `${n(rows.length)} rows` : `${n(rows.length)} of ${n(this.all.length)} rows`;
    this.renderHeader();
    this.render();
  }

  private renderHeader(): void {
    clear(this.header);
    for (const c of this.o.columns) {
      const sorted = c.key === this.sortKey;
      const cell = h(
        'div',
        {
          class: `vt-cell vt-head${c.numeric ? ' num' : ''}`,
          role: 'columnheader',
          tabindex: 0,
          'data-sort': c.key,
          'aria-sort': sorted ? (this.sortDesc ? 'descending' : 'ascending') : 'none',
          title: c.title ? `${c.title} (sort)` : `Sort by ${c.label}`,
          'aria-label': c.title ?? c.label,
        },
        c.label,
        sorted ? (this.sortDesc ? ' ▼' : ' ▲') : '',
      );
      const toggle = () => {
        if (this.sortKey === c.key) {
          // ascending → descending → file order
          if (this.sortDesc) {
            this.sortKey = null;
            this.sortDesc = false;
          } else {
            this.sortDesc = true;
          }
        } else {
          this.sortKey = c.key;
          this.sortDesc = false;
        }
        this.recompute();
        this.o.onStateChange?.();
      };
      cell.addEventListener('click', toggle);
      cell.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          toggle();
        }
      });
      this.header.append(cell);
    }
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  private render(): void {
    const w = virtualWindow(this.scroller.scrollTop, this.scroller.clientHeight || 400, ROW_HEIGHT, this.view.length);
    this.spacer.style.height = `${w.totalHeight}px`;
    // Short tables shrink to fit; long ones stop at the CSS max-height and scroll.
    this.scroller.style.height = `${Math.max(w.totalHeight, ROW_HEIGHT) + 2}px`;
    this.body.style.transform = `translateY(${w.offset}px)`;
    clear(this.body);
    for (let i = w.start; i < w.end; i++) {
      const row = this.view[i]!;
      const key = this.o.keyOf(row);
      const el = h('div', {
        class: 'vt-row',
        role: 'row',
        'data-testid': this.o.rowTestId,
        'data-key': key,
        'aria-selected': key === this.selected ? 'true' : 'false',
        'aria-rowindex': i + 2,
      });
      el.style.gridTemplateColumns = this.o.gridTemplate;
      for (const c of this.o.columns) {
        const content = this.o.renderCell ? this.o.renderCell(c, row) : c.text(row);
        const text = c.text(row);
        el.append(h('div', { class: `vt-cell${c.numeric ? ' num' : ''}`, role: 'gridcell', 'data-col': c.key, title: text }, content));
      }
      el.addEventListener('click', () => this.select(key));
      this.body.append(el);
    }
  }

  private onKey(e: KeyboardEvent): void {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    e.preventDefault();
    const i = this.view.findIndex((r) => this.o.keyOf(r) === this.selected);
    const next = e.key === 'ArrowDown' ? Math.min(this.view.length - 1, i + 1) : Math.max(0, i - 1);
    const row = this.view[next];
    if (row) this.select(this.o.keyOf(row), true);
  }
}
