/** Layer index × module type grid as SVG (one <rect> per cell, with a <title> tooltip); click selects a module. */
import { fmtNum, normalize, rampColor, type HeatmapGrid } from '../model';
import { h, s } from '../dom';

export interface HeatmapOptions {
  testId: string;
  title: string;
  valueLabel: string;
  /** Fixed colour domain (cosine: −1..1); default the data's min..max. */
  domain?: [number, number];
  onPick?: (module: string) => void;
}

const CELL_W = 44;
const CELL_H = 14;
const LEFT = 44;
const TOP = 64;

export function renderHeatmap(grid: HeatmapGrid, o: HeatmapOptions): HTMLElement {
  const [lo, hi] = o.domain ?? [grid.min, grid.max];
  const width = LEFT + grid.cols.length * CELL_W + 8;
  const height = TOP + grid.rows.length * CELL_H + 8;
  const svg = s('svg', {
    class: 'heatmap-svg',
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': `${o.title}: ${grid.rows.length} layers × ${grid.cols.length} module types`,
  });
  grid.cols.forEach((c, j) => {
    const x = LEFT + j * CELL_W + CELL_W / 2;
    svg.append(s('text', { class: 'hm-col', x, y: TOP - 6, transform: `rotate(-40 ${x} ${TOP - 6})` }, c.length > 14 ? `${c.slice(0, 13)}…` : c));
  });
  grid.rows.forEach((r, i) => {
    const y = TOP + i * CELL_H;
    svg.append(s('text', { class: 'hm-row', x: LEFT - 6, y: y + CELL_H - 3 }, r === null ? 'other' : String(r)));
    grid.cells[i]!.forEach((cell, j) => {
      const x = LEFT + j * CELL_W;
      if (!cell) {
        svg.append(s('rect', { class: 'hm-empty', x: x + 0.5, y: y + 0.5, width: CELL_W - 1, height: CELL_H - 1 }));
        return;
      }
      const rect = s(
        'rect',
        {
          class: 'hm-cell',
          x: x + 0.5,
          y: y + 0.5,
          width: CELL_W - 1,
          height: CELL_H - 1,
          fill: rampColor(normalize(cell.value, lo, hi)),
          'data-module': cell.modules[0],
          'data-value': cell.value,
        },
        s('title', {}, `${cell.modules.join('\n')}\n${o.valueLabel} ${fmtNum(cell.value)}`),
      );
      rect.addEventListener('click', () => o.onPick?.(cell.modules[0]!));
      svg.append(rect);
    });
  });
  const legend = h(
    'div',
    { class: 'hm-legend' },
    h('span', {}, fmtNum(lo)),
    h('span', { class: 'hm-ramp', 'aria-hidden': 'true' }),
    h('span', {}, fmtNum(hi)),
    h('span', { class: 'muted' }, ` ${o.valueLabel}`),
  );
  return h('section', { class: 'panel heatmap', 'data-testid': o.testId }, h('h3', {}, o.title), legend, h('div', { class: 'hm-scroll' }, svg));
}
