/** Pure classification on synthetic name/shape lists (rules from ADAPTERS.md §b–§d). */
import test from 'node:test';
import assert from 'node:assert/strict';
import { buildAdapter } from '../../../src/core/adapter/build';
import { lookupPattern } from '../../../src/core/adapter/patterns';
import { buildKohyaTable } from '../../../src/core/adapter/kohyaNames';
import { ti } from './helpers';

const peft = (m: string, r: number, inF: number, out: number) => [
  ti(`base_model.model.${m}.lora_A.weight`, [r, inF]), ti(`base_model.model.${m}.lora_B.weight`, [out, r]),
];
const codes = (w: { code: string }[]) => w.map((x) => x.code).sort();

test('PEFT ≥0.15 pattern rule: first matching key in dict order, dot-boundary suffix, ^ anchors, exact fallback', () => {
  const pats = { 'q_proj': 1, 'layers.0.self_attn.q_proj': 2, '^model.layers.1.self_attn.v_proj': 3, 'model.x[1]': 4 };
  assert.deepEqual(lookupPattern(pats, 'model.layers.0.self_attn.q_proj', 0), { value: 1, pattern: 'q_proj' });
  assert.equal(lookupPattern({ 'layers.0.self_attn.q_proj': 2, q_proj: 1 }, 'model.layers.0.self_attn.q_proj', 0).value, 2);
  assert.equal(lookupPattern(pats, 'model.layers.1.self_attn.v_proj', 0).value, 3);
  assert.equal(lookupPattern(pats, 'foo.model.layers.1.self_attn.v_proj', 0).value, 0); // ^ anchors to the start
  assert.equal(lookupPattern({ proj: 1 }, 'model.q_proj', 0).value, 0); // not on a dot boundary
  assert.equal(lookupPattern({ 'v_proj': 5 }, 'model.v_proj.x', 0).value, 0); // anchored at the end
  assert.equal(lookupPattern({ '(?P<a>k|v)_proj': 6 }, 'm.k_proj', 0).value, 6); // Python named group translated
  assert.equal(lookupPattern({ 'layers.1': 7 }, 'xlayersX1', 0).value, 0); // needs a dot boundary before the pattern
  assert.equal(lookupPattern({ 'layers.1': 7 }, 'layersX1', 0).value, 7); // dots are regex wildcards
});

test('PEFT: missing lora_alpha means 8 (not r); rslora; rank/alpha patterns; RankMismatch; PatternMatchesNothing', () => {
  const tensors = [...peft('model.layers.0.q_proj', 16, 32, 32), ...peft('model.layers.0.v_proj', 4, 32, 32)];
  const a = buildAdapter({ tensors, metadata: null, config: { r: 16, peft_type: 'LORA' }, file: 'x' });
  const q = a.layers.find((l) => l.module.endsWith('q_proj'))!;
  assert.deepEqual([q.alpha, q.scaling, q.sources.alpha], [8, 0.5, 'default']);
  assert.deepEqual(codes(a.warnings), ['RankMismatch']); // v_proj has r=4 in the file, config says 16
  const b = buildAdapter({
    tensors, metadata: null, file: 'x',
    config: { r: 16, lora_alpha: 16, use_rslora: true, rank_pattern: { v_proj: 4 }, alpha_pattern: { 'layers.0.q_proj': 64, nothing_here: 2 } },
  });
  const q2 = b.layers.find((l) => l.module.endsWith('q_proj'))!, v2 = b.layers.find((l) => l.module.endsWith('v_proj'))!;
  assert.deepEqual([q2.alpha, q2.scaling, q2.scalingRule], [64, 16, 'alpha/sqrt(r)']);
  assert.deepEqual([v2.alpha, v2.scaling], [16, 8]);
  assert.deepEqual(codes(b.warnings), ['PatternMatchesNothing']);
});

test('PEFT: unknown config keys, aLoRA, conv, embedding, DoRA, lora_bias, .base_layer embedding save', () => {
  const tensors = [
    ...peft('unet.conv', 4, 8, 16).map((t) => (t.name.includes('lora_A') ? ti(t.name, [4, 8, 3, 3]) : ti(t.name, [16, 4, 1, 1]))),
    ti('base_model.model.model.embed_tokens.lora_embedding_A', [4, 100]), ti('base_model.model.model.embed_tokens.lora_embedding_B', [32, 4]),
    ...peft('model.q', 4, 32, 32), ti('base_model.model.model.q.lora_magnitude_vector', [32]), ti('base_model.model.model.q.lora_B.bias', [32]),
    ti('base_model.model.model.embed_tokens.base_layer.weight', [100, 32]),
    ti('base_model.model.lm_head.modules_to_save.default.weight', [100, 32]),
  ];
  const a = buildAdapter({ tensors, metadata: null, file: 'x', config: { lora_alpha: 8, r: 4, alora_invocation_tokens: [5], my_new_key: 1, modules_to_save: ['lm_head'] } });
  assert.deepEqual(codes(a.warnings), ['Unmergeable', 'UnknownConfigKey'].sort());
  const conv = a.layers.find((l) => l.module === 'unet.conv')!;
  assert.deepEqual([conv.kind, conv.kernel, conv.inFeatures, conv.outFeatures], ['conv', [3, 3], 8, 16]);
  const emb = a.layers.find((l) => l.kind === 'embedding')!;
  assert.deepEqual([emb.baseKey, emb.inFeatures, emb.outFeatures], ['model.embed_tokens.weight', 100, 32]);
  const q = a.layers.find((l) => l.module === 'model.q')!;
  assert.ok(q.magnitudeKey && q.loraBiasKey);
  assert.deepEqual(a.replacedTensors.map((t) => [t.baseKey, t.reason]).sort(), [
    ['lm_head.weight', 'modules_to_save'], ['model.embed_tokens.weight', 'embedding'],
  ]);
});

test('loralib MergedLinear: groups from shapes, block count from the base, 2-of-3 ambiguity noted', () => {
  const t = [ti('h.0.attn.c_attn.lora_A', [8, 64]), ti('h.0.attn.c_attn.lora_B', [128, 4])];
  const none = buildAdapter({ tensors: t, metadata: null, config: null, file: 'x' }).layers[0]!;
  assert.deepEqual([none.kind, none.r, none.alpha, none.scaling, none.sources.alpha], ['merged-linear', 4, null, null, 'unknown']);
  assert.deepEqual(none.enableLora, [true, false, true]);
  assert.equal(none.outFeatures, 192);
  const baseOf = (shape: number[]) => { const b = ti('h.0.attn.c_attn.weight', shape); return { tensors: [b], get: (n: string) => (n === b.name ? b : undefined) }; };
  // out 128 = g blocks of 64 → all enabled, no ambiguity.
  const all = buildAdapter({ tensors: t, metadata: null, config: null, file: 'x', base: baseOf([128, 64]) }).layers[0]!;
  assert.deepEqual(all.enableLora, [true, true]);
  assert.equal(all.notes.length, 1); // only "alpha unknown"
  // (in, out) storage → fan_in_fan_out inferred.
  const conv1d = buildAdapter({ tensors: t, metadata: null, config: null, file: 'x', base: baseOf([64, 192]) });
  assert.deepEqual(conv1d.layers[0]!.enableLora, [true, false, true]);
  assert.equal(conv1d.layers[0]!.fanInFanOut, true);
  assert.ok(conv1d.warnings.some((w) => w.code === 'FanInFanOutOnConv1D'));
  const ov = buildAdapter({ tensors: t, metadata: null, config: null, file: 'x', overrides: { alpha: 8, enableLora: [false, true, true] } }).layers[0]!;
  assert.deepEqual([ov.scaling, ov.enableLora, ov.sources.enableLora], [2, [false, true, true], 'declared']);
});

test('kohya: names map back through a table built from every base tensor, never by splitting on "_"', () => {
  const base = [ti('down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight', [8, 8]), ti('text_model.encoder.layers.0.self_attn.q_proj.weight', [8, 8])];
  const tab = buildKohyaTable(base);
  assert.equal(tab.map.get('lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q'), base[0]!.name);
  assert.equal(tab.map.get('lora_te1_text_model_encoder_layers_0_self_attn_q_proj'), base[1]!.name);
  const n = 'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q';
  const tensors = [ti(`${n}.lora_down.weight`, [2, 8]), ti(`${n}.lora_up.weight`, [8, 2]), ti(`${n}.alpha`, [], 'F16')];
  const a = buildAdapter({ tensors, metadata: null, config: null, file: 'x', alphaValues: new Map([[`${n}.alpha`, 1]]), base: { tensors: base, get: (k) => base.find((b) => b.name === k) } });
  assert.deepEqual([a.format, a.layers[0]!.baseKey, a.layers[0]!.scaling], ['kohya', base[0]!.name, 0.5]);
  const noAlpha = buildAdapter({ tensors: tensors.slice(0, 2), metadata: null, config: null, file: 'x' }).layers[0]!;
  assert.deepEqual([noAlpha.alpha, noAlpha.scaling, noAlpha.baseKey, noAlpha.sources.alpha], [2, 1, null, 'default']);
});

test('diffusers legacy attention-processor names and .alpha tensors', () => {
  const tensors = [
    ti('unet.mid.attn1.processor.to_out_lora.down.weight', [4, 16]), ti('unet.mid.attn1.processor.to_out_lora.up.weight', [16, 4]),
    ti('text_encoder.l.0.self_attn.q_proj.lora_linear_layer.down.weight', [2, 16]), ti('text_encoder.l.0.self_attn.q_proj.lora_linear_layer.up.weight', [16, 2]),
    ti('text_encoder.l.0.self_attn.q_proj.alpha', []),
  ];
  const a = buildAdapter({ tensors, metadata: null, config: null, file: 'x', alphaValues: new Map([['text_encoder.l.0.self_attn.q_proj.alpha', 1]]) });
  assert.equal(a.format, 'diffusers');
  const u = a.layers.find((l) => l.module.startsWith('unet'))!;
  assert.deepEqual([u.module, u.baseKey, u.scaling], ['unet.mid.attn1.to_out.0', 'mid.attn1.to_out.0.weight', 1]);
  const te = a.layers.find((l) => l.module.startsWith('text_encoder'))!;
  assert.deepEqual([te.alpha, te.scaling], [1, 0.5]);
  assert.deepEqual(a.warnings, []);
});

test('not an adapter → NotAnAdapter', () => {
  assert.throws(() => buildAdapter({ tensors: [ti('model.w.weight', [2, 2])], metadata: null, config: null, file: 'x' }), { code: 'NotAnAdapter' });
});
