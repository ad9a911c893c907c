import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LayerReport } from '../../../src/core/reports';
import {
  changeText, DIFF_COLUMNS, filterRows, fmtNum, gridTemplate, heatmapGrid, LAYER_COLUMNS, layerIndexOf, loralibEdit,
  loralibInitialFields, maskChips, maskText, maskToText, moduleTypeOf, needsLoralibEditor, parseMask, rampColor, rangeText,
  sortRows, TENSOR_COLUMNS, virtualWindow,
} from '../../../webview/model';

function layer(module: string, over: Partial<LayerReport> = {}): LayerReport {
  return {
    module, baseKey: `${module}.weight`, kind: 'linear', r: 8, alpha: 16, scaling: 2, scalingRule: 'alpha/r', enableLora: null,
    fanInFanOut: false, inFeatures: 64, outFeatures: 64, dtype: 'F32', aShape: [8, 64], bShape: [64, 8], dora: false,
    sources: { r: 'inferred', alpha: 'declared', enableLora: 'unknown', fanInFanOut: 'declared' }, notes: [],
    normDelta: 1, normBA: 0.5, relNorm: null, singularValues: [1], effectiveRank: 1, hasNonFinite: false, ...over,
  };
}

test('mask chips name q/k/v for three blocks and index otherwise', () => {
  assert.equal(maskText([true, false, true]), 'q ✓ k ✗ v ✓');
  assert.deepEqual(maskChips([true, false, true, true]).map((c) => c.label), ['0', '1', '2', '3']);
  assert.deepEqual(maskChips(null), []);
  assert.equal(maskToText([true, false, true]), '1,0,1');
});

test('mask text round-trips and junk is rejected', () => {
  assert.deepEqual(parseMask('1,0,1'), [true, false, true]);
  assert.deepEqual(parseMask(' true, false  true '), [true, false, true]);
  assert.deepEqual(parseMask(maskToText([false, true])), [false, true]);
  for (const bad of ['', '1,2', 'q,v', '1;0', ',,']) assert.equal(parseMask(bad), null, bad);
});

test('layer index = first numbered segment; module type = last segment', () => {
  assert.equal(layerIndexOf('base_model.model.model.layers.12.self_attn.q_proj'), 12);
  assert.equal(layerIndexOf('transformer.h.0.attn.c_attn'), 0);
  assert.equal(layerIndexOf('unet.down_blocks.1.attentions.0.proj_in'), 1);
  assert.equal(layerIndexOf('lm_head'), null);
  assert.equal(moduleTypeOf('model.layers.3.mlp.down_proj'), 'down_proj');
  assert.equal(layerIndexOf('lora_unet_down_blocks_2_attentions_1_transformer_blocks_0_attn1_to_q'), 2);
  assert.equal(moduleTypeOf('lora_unet_down_blocks_2_attentions_1_transformer_blocks_0_attn1_to_q'), 'attn1_to_q');
  assert.equal(moduleTypeOf('lora_te_text_model_encoder_layers_11_mlp_fc2'), 'mlp_fc2');
});

test('heatmap grid puts each value in its layer × type cell', () => {
  const names: { module: string; value: number | null }[] = [];
  for (let i = 0; i < 12; i++) for (const m of ['q_proj', 'v_proj']) names.push({ module: `model.layers.${i}.self_attn.${m}`, value: i + (m === 'v_proj' ? 0.5 : 0) });
  names.push({ module: 'lm_head', value: 100 }, { module: 'model.layers.3.mlp.up_proj', value: null });
  const g = heatmapGrid(names);
  assert.deepEqual(g.rows, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, null], 'numeric order, "other" last');
  assert.deepEqual(g.cols, ['lm_head', 'q_proj', 'up_proj', 'v_proj']);
  const at = (row: number | null, col: string) => g.cells[g.rows.indexOf(row)]![g.cols.indexOf(col)];
  assert.equal(at(10, 'v_proj')?.value, 10.5);
  assert.deepEqual(at(10, 'v_proj')?.modules, ['model.layers.10.self_attn.v_proj']);
  assert.equal(at(3, 'up_proj'), null, 'null values leave the cell empty');
  assert.equal(at(null, 'lm_head')?.value, 100);
  assert.equal(g.min, 0);
  assert.equal(g.max, 100);
});

test('colour ramp is monotone in its first stop and clamps', () => {
  assert.equal(rampColor(0), 'rgb(68, 1, 84)');
  assert.equal(rampColor(1), 'rgb(253, 231, 37)');
  assert.equal(rampColor(-3), rampColor(0));
  assert.equal(rampColor(Number.NaN), rampColor(0));
});

test('virtual window renders only visible rows plus overscan', () => {
  const w = virtualWindow(24 * 1000, 240, 24, 2500, 5);
  assert.equal(w.start, 995);
  assert.equal(w.end, 1000 + 11 + 5);
  assert.equal(w.offset, 995 * 24);
  assert.equal(w.totalHeight, 2500 * 24);
  assert.ok(w.end - w.start < 30, 'a handful of rows, not 2,500');
  const top = virtualWindow(0, 240, 24, 2500, 5);
  assert.equal(top.start, 0);
  const past = virtualWindow(1e9, 240, 24, 100, 5);
  assert.equal(past.end, 100);
  assert.ok(past.start > 80);
  assert.deepEqual(virtualWindow(0, 240, 24, 0), { start: 0, end: 0, offset: 0, totalHeight: 0 });
});

test('sorting is stable, numeric-aware and puts nulls last both ways', () => {
  const rows = [layer('h.10.a', { r: 4, relNorm: 0.2 }), layer('h.2.a', { r: 16, relNorm: null }), layer('h.1.a', { r: 4, relNorm: 0.1 })];
  const col = (k: string) => LAYER_COLUMNS.find((c) => c.key === k)!;
  assert.deepEqual(sortRows(rows, col('module').value, false).map((l) => l.module), ['h.1.a', 'h.2.a', 'h.10.a']);
  assert.deepEqual(sortRows(rows, col('r').value, false).map((l) => l.module), ['h.10.a', 'h.1.a', 'h.2.a']);
  assert.deepEqual(sortRows(rows, col('r').value, true).map((l) => l.module), ['h.2.a', 'h.10.a', 'h.1.a']);
  assert.deepEqual(sortRows(rows, col('rel').value, false).map((l) => l.module), ['h.1.a', 'h.10.a', 'h.2.a']);
  assert.deepEqual(sortRows(rows, col('rel').value, true).map((l) => l.module), ['h.10.a', 'h.1.a', 'h.2.a']);
});

test('filter ANDs case-insensitive terms', () => {
  const rows = ['model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj', 'model.layers.10.self_attn.q_proj'];
  assert.deepEqual(filterRows(rows, 'Q_PROJ', (r) => r), [rows[0], rows[2]]);
  assert.deepEqual(filterRows(rows, 'layers.1. q_proj', (r) => r), [rows[0]]);
  assert.deepEqual(filterRows(rows, '   ', (r) => r), rows);
});

test('formatting and summary helpers', () => {
  assert.equal(fmtNum(null), '—');
  assert.equal(fmtNum(2), '2');
  assert.equal(fmtNum(0.123456), '0.123');
  assert.equal(fmtNum(1.5e-7), '1.50e-7');
  assert.equal(rangeText([4, 8, 8, null]), '4, 8');
  assert.equal(rangeText([1, 2, 4, 8, 16]), '1–16');
  assert.equal(changeText(4, 8), '4 → 8');
  assert.equal(changeText(4, 4), '4');
  const mask = layer('c_attn', { enableLora: [true, false, true], sources: { r: 'inferred', alpha: 'declared', enableLora: 'inferred', fanInFanOut: 'default' } });
  assert.equal(LAYER_COLUMNS.find((c) => c.key === 'mask')!.text(mask), 'q ✓ k ✗ v ✓');
  assert.equal(needsLoralibEditor('loralib', [mask]), true);
  assert.equal(needsLoralibEditor('loralib', [layer('x')]), false);
  assert.equal(needsLoralibEditor('loralib', [layer('x', { alpha: null, sources: { r: 'inferred', alpha: 'unknown', enableLora: 'unknown', fanInFanOut: 'default' } })]), true);
  assert.equal(needsLoralibEditor('peft', [mask]), false);
});

test('loralib editor starts from the values the report uses: inferred mask, current α, current fan_in_fan_out', () => {
  const unknownAlpha = { r: 'inferred', alpha: 'unknown', enableLora: 'inferred', fanInFanOut: 'inferred' } as const;
  const inferred = [
    layer('transformer.h.0.attn.c_attn', { alpha: null, scaling: null, enableLora: [true, false, true], fanInFanOut: true, sources: unknownAlpha }),
    layer('transformer.h.1.attn.c_attn', { alpha: null, scaling: null, enableLora: [true, false, true], fanInFanOut: true, sources: unknownAlpha }),
  ];
  assert.deepEqual(loralibInitialFields(inferred), { alpha: '', mask: '1,0,1', fanInFanOut: true });
  const declared = [layer('a', { alpha: 8, enableLora: [false, true], fanInFanOut: false })];
  assert.deepEqual(loralibInitialFields(declared), { alpha: '8', mask: '0,1', fanInFanOut: false });
  assert.deepEqual(loralibInitialFields([]), { alpha: '', mask: '', fanInFanOut: false });
});

test('loralib editor writes only what the user changed', () => {
  const initial = { alpha: '', mask: '1,0,1', fanInFanOut: true };
  // Only α typed: the inferred mask and fan_in_fan_out stay out of the file.
  assert.deepEqual(loralibEdit(initial, { ...initial, alpha: '16' }), { ok: true, alpha: 16, enableLora: null, fanInFanOut: null });
  // The untouched checkbox never writes fan_in_fan_out: false (the bug); unticking it does.
  const noBase = { alpha: '', mask: '1,0,1', fanInFanOut: false }; // default false until a base shows the Conv1D layout
  assert.deepEqual(loralibEdit(noBase, { ...noBase, alpha: '8' }), { ok: true, alpha: 8, enableLora: null, fanInFanOut: null });
  assert.deepEqual(loralibEdit(initial, { ...initial, fanInFanOut: false }), { ok: true, alpha: null, enableLora: null, fanInFanOut: false });
  // The same mask spelled differently is no change; a different one is written.
  assert.equal(loralibEdit(initial, { ...initial, mask: ' 1, 0 ,1 ' }).ok, false);
  assert.deepEqual(loralibEdit(initial, { ...initial, mask: 'true false false' }), { ok: true, alpha: null, enableLora: [true, false, false], fanInFanOut: null });
  // Typing the inferred mask again confirms it (ends the guess); the same text untouched does not.
  assert.deepEqual(loralibEdit(initial, { ...initial, mask: '1,0,1' }, { confirmMask: true }), { ok: true, alpha: null, enableLora: [true, false, true], fanInFanOut: null });
  assert.ok(!loralibEdit(initial, { ...initial, mask: 'x' }, { confirmMask: true }).ok);
  // Nothing changed → nothing to save (the message would be rejected by the host anyway).
  const none = loralibEdit(initial, initial);
  assert.ok(!none.ok && none.nothingChanged);
  // α equal to the current value ("8.0" vs "8") is no change; invalid input is an error, not a silent null.
  assert.ok(!loralibEdit({ ...initial, alpha: '8' }, { ...initial, alpha: '8.0' }).ok);
  for (const bad of ['-1', '0', 'abc']) {
    const r = loralibEdit(initial, { ...initial, alpha: bad });
    assert.ok(!r.ok && !r.nothingChanged && /α/.test(r.error), bad);
  }
  const badMask = loralibEdit(initial, { ...initial, mask: '1,2' });
  assert.ok(!badMask.ok && /mask/.test(badMask.error));
});

test('every column has a min width; the header template equals the row template; abbreviated labels keep a title', () => {
  for (const cols of [LAYER_COLUMNS, TENSOR_COLUMNS, DIFF_COLUMNS] as { key: string; label: string; title?: string; width: string }[][]) {
    assert.equal(gridTemplate(cols).split(/ (?![^(]*\))/).length, cols.length);
    for (const c of cols) {
      assert.match(c.width, /^(\d+(\.\d+)?em|minmax\(\d+em, \d+fr\))$/, c.key);
      // About 0.6em per character of a bold header ("fan_in_fan_out" in 4em showed "fan_i…", "subspace sim." in 7em
      // showed "subspace …").
      const em = c.width.startsWith('minmax') ? Number(/\d+/.exec(c.width)![0]) : Number.parseFloat(c.width);
      assert.ok(em >= 0.6 * c.label.length, `${c.key}: "${c.label}" fits ${c.width}`);
    }
  }
  const fifo = LAYER_COLUMNS.find((c) => c.key === 'fifo')!;
  assert.equal(fifo.title, 'fan_in_fan_out');
});
