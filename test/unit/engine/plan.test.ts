import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Adapter, AdapterLayer, ReplacedTensor } from '../../../src/core/adapter/types';
import type { Checkpoint, TensorInfo } from '../../../src/core/checkpoint';
import { DTYPE_BITS, type Dtype } from '../../../src/core/dtype';
import { isLoraLensError } from '../../../src/core/errors';
import { planMerge, updateShape } from '../../../src/core/engine/plan';
import { applyDora, doraNormAxis } from '../../../src/core/engine/dora';

function fakeBase(tensors: [string, Dtype, number[]][]): Checkpoint {
  const infos: TensorInfo[] = tensors.map(([name, dtype, shape]) => ({
    name, dtype, shape, byteLength: (shape.reduce((p, x) => p * x, 1) * DTYPE_BITS[dtype]) / 8,
  }));
  const byName = new Map(infos.map((t) => [t.name, t]));
  return {
    path: '/x/base.safetensors', files: ['/x/base.safetensors'], format: 'safetensors', metadata: null, tensors: infos,
    get: (n) => byName.get(n), fileOf: () => '/x/base.safetensors',
    readBytes: async () => new Uint8Array(), readF32: async () => new Float32Array(), close: async () => {},
  };
}

function layer(module: string, over: Partial<AdapterLayer> = {}): AdapterLayer {
  return {
    module, baseKey: `${module}.weight`, kind: 'linear', r: 4, alpha: 8, scaling: 2, scalingRule: 'alpha/r',
    enableLora: null, fanInFanOut: false, inFeatures: 16, outFeatures: 32, dtype: 'F32',
    aKey: `${module}.lora_A`, bKey: `${module}.lora_B`, aShape: [4, 16], bShape: [32, 4], kernel: [],
    magnitudeKey: null, loraBiasKey: null, alphaKey: null,
    sources: { r: 'inferred', alpha: 'declared', enableLora: 'default', fanInFanOut: 'declared' }, notes: [],
    ...over,
  };
}

function fakeAdapter(layers: AdapterLayer[], extra: Partial<Adapter> = {}): Adapter {
  return {
    format: 'peft', path: '/a/adapter', weightsPath: '/a/adapter/adapter_model.safetensors', configPath: null, config: {},
    checkpoint: fakeBase([]), layers, replacedTensors: [], warnings: [], baseModel: null, ...extra,
  };
}

function code(fn: () => unknown): { code: string; kind: string; message: string } {
  try {
    fn();
  } catch (e) {
    assert.ok(isLoraLensError(e), `expected a LoraLensError, got ${String(e)}`);
    return { code: e.code, kind: e.kind, message: e.message };
  }
  assert.fail('expected an error');
}

test('plan: updates per base tensor, weights and scalings, in adapter order', () => {
  const base = fakeBase([['m.a.weight', 'F16', [32, 16]], ['m.b.weight', 'F16', [32, 16]], ['other', 'F16', [3]]]);
  const a1 = fakeAdapter([layer('m.a'), layer('m.b')]);
  const a2 = fakeAdapter([layer('m.a', { scaling: 0.5 })]);
  const plan = planMerge(base, [{ adapter: a1, weight: 1 }, { adapter: a2, weight: 0.25 }]);
  assert.deepEqual([...plan.tensors.keys()].sort(), ['m.a.weight', 'm.b.weight']);
  const a = plan.tensors.get('m.a.weight')!;
  assert.deepEqual(a.updates.map((u) => [u.adapterIndex, u.weight, u.scaling]), [[0, 1, 2], [1, 0.25, 0.5]]);
  assert.equal(a.dora, null);
});

test('plan: missing base key names both the layer and the key', () => {
  const base = fakeBase([['m.a.weight', 'F32', [32, 16]]]);
  const e = code(() => planMerge(base, [{ adapter: fakeAdapter([layer('m.zzz')]), weight: 1 }]));
  assert.equal(e.code, 'BaseKeyMissing');
  assert.match(e.message, /m\.zzz/);
  assert.match(e.message, /m\.zzz\.weight/);
  assert.match(e.message, /base\.safetensors/);
});

test('plan: transposed shape → fan_in_fan_out hint with both shapes', () => {
  const base = fakeBase([['transformer.h.0.attn.c_attn.weight', 'F32', [768, 2304]]]);
  const l = layer('transformer.h.0.attn.c_attn', { inFeatures: 768, outFeatures: 2304, aShape: [8, 768], bShape: [2304, 8] });
  const e = code(() => planMerge(base, [{ adapter: fakeAdapter([l]), weight: 1 }]));
  assert.equal(e.kind, 'input');
  assert.match(e.message, /transformer\.h\.0\.attn\.c_attn\.weight is \[768, 2304\] but the adapter's update is \[2304, 768\] — fan_in_fan_out mismatch\?/);
  // with fan_in_fan_out it fits
  const ok = planMerge(base, [{ adapter: fakeAdapter([{ ...l, fanInFanOut: true }]), weight: 1 }]);
  assert.equal(ok.tensors.size, 1);
});

test('plan: unknown alpha asks for --alpha or a config', () => {
  const base = fakeBase([['m.a.weight', 'F32', [32, 16]]]);
  const e = code(() => planMerge(base, [{ adapter: fakeAdapter([layer('m.a', { alpha: null, scaling: null })]), weight: 1 }]));
  assert.equal(e.code, 'AlphaUnknown');
  assert.match(e.message, /--alpha/);
  assert.match(e.message, /config/);
});

test('plan: F8, integer and sub-byte base tensors are refused as unsupported', () => {
  for (const dt of ['F8_E4M3', 'I8', 'U8', 'F4'] as Dtype[]) {
    const base = fakeBase([['m.a.weight', dt, [32, 16]]]);
    const e = code(() => planMerge(base, [{ adapter: fakeAdapter([layer('m.a')]), weight: 1 }]));
    assert.equal(e.kind, 'unsupported', dt);
    assert.match(e.message, /quantized\/F8 base tensors cannot be merged exactly/);
  }
});

test('plan: aLoRA is refused', () => {
  const base = fakeBase([['m.a.weight', 'F32', [32, 16]]]);
  const e = code(() => planMerge(base, [{ adapter: fakeAdapter([layer('m.a')], { config: { alora_invocation_tokens: [1, 2] } }), weight: 1 }]));
  assert.equal(e.kind, 'unsupported');
  assert.match(e.message, /aLoRA/);
});

test('plan: two DoRA adapters on one module are refused; DoRA alone is planned', () => {
  const base = fakeBase([['m.a.weight', 'F32', [32, 16]]]);
  const d = layer('m.a', { magnitudeKey: 'm.a.lora_magnitude_vector' });
  const one = planMerge(base, [{ adapter: fakeAdapter([d]), weight: 1 }]);
  assert.ok(one.tensors.get('m.a.weight')!.dora);
  const e = code(() => planMerge(base, [{ adapter: fakeAdapter([d]), weight: 1 }, { adapter: fakeAdapter([d]), weight: 1 }]));
  assert.equal(e.code, 'MultipleDora');
});

test('plan: replacements must match the base shape; lora_B.bias needs a base bias', () => {
  const base = fakeBase([['score.weight', 'F32', [6, 768]], ['m.a.weight', 'F32', [32, 16]]]);
  const rep = (shape: number[]): ReplacedTensor => ({ key: 'base_model.model.score.weight', baseKey: 'score.weight', reason: 'head', shape, dtype: 'F32' });
  const ok = planMerge(base, [{ adapter: fakeAdapter([], { replacedTensors: [rep([6, 768])] }), weight: 1 }]);
  assert.equal(ok.tensors.get('score.weight')!.replacement!.tensor.key, 'base_model.model.score.weight');
  const e = code(() => planMerge(base, [{ adapter: fakeAdapter([], { replacedTensors: [rep([3, 768])] }), weight: 1 }]));
  assert.equal(e.code, 'ShapeMismatch');
  assert.match(e.message, /\[6, 768\].*\[3, 768\]/);
  const b = code(() => planMerge(base, [{ adapter: fakeAdapter([layer('m.a', { loraBiasKey: 'm.a.lora_B.bias' })]), weight: 1 }]));
  assert.equal(b.code, 'LoraBiasNoBase');
  const withBias = fakeBase([['m.a.weight', 'F32', [32, 16]], ['m.a.bias', 'F32', [32]]]);
  const p = planMerge(withBias, [{ adapter: fakeAdapter([layer('m.a', { loraBiasKey: 'm.a.lora_B.bias' })]), weight: 1 }]);
  assert.equal(p.tensors.get('m.a.bias')!.biasAdds[0]!.key, 'm.a.lora_B.bias');
});

test('updateShape: conv and embedding orientation', () => {
  assert.deepEqual(updateShape(layer('c', { kind: 'conv', outFeatures: 12, aShape: [4, 8, 3, 3], bShape: [12, 4, 1, 1] })), [12, 8, 3, 3]);
  assert.deepEqual(updateShape(layer('e', { kind: 'embedding', aShape: [4, 97], bShape: [48, 4] })), [97, 48]);
});

test('DoRA: rows are rescaled to m; fan_in_fan_out and embeddings use columns', () => {
  // 2×3, rows [3,4,0] and [0,0,2]: norms 5 and 2
  const v = Float32Array.from([3, 4, 0, 0, 0, 2]);
  applyDora(v, 2, 3, Float32Array.from([10, 1]), 'rows', 't');
  assert.deepEqual([...v], [6, 8, 0, 0, 0, 1]);
  const c = Float32Array.from([3, 0, 4, 2]); // 2×2: columns [3,4] and [0,2]
  applyDora(c, 2, 2, Float32Array.from([1, 4]), 'cols', 't');
  assert.deepEqual([...c].map((x) => Math.round(x * 1e6) / 1e6), [0.6, 0, 0.8, 4]);
  assert.equal(doraNormAxis(layer('x', { fanInFanOut: true })), 'cols');
  assert.equal(doraNormAxis(layer('x', { kind: 'embedding' })), 'cols');
  assert.equal(doraNormAxis(layer('x')), 'rows');
  assert.throws(() => applyDora(Float32Array.from([0, 0]), 1, 2, Float32Array.from([1]), 'rows', 't'), /norm 0/);
  assert.throws(() => applyDora(Float32Array.from([1, 1]), 1, 2, Float32Array.from([1, 1]), 'rows', 't'), /magnitude/);
});
