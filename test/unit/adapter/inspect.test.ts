import test from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { statSync } from 'node:fs';
import { inspect } from '../../../src/core/inspect';
import { openCheckpoint } from '../../../src/core/formats/open';
import { oracleDir, readJson } from './helpers';

const fro = (a: ArrayLike<number>) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!; return Math.sqrt(s); };

test('inspect: ‖ΔW‖ from factors equals ‖merged − base‖ of the F32 oracles (linear fan_in_fan_out, MergedLinear, plain)', async () => {
  for (const [name, adapterRel] of [['peft-gpt2-fan_in_fan_out', 'adapter'], ['loralib-gpt2-c_attn', 'adapter.safetensors'], ['loralib-linear', 'adapter.safetensors']]) {
    const dir = join(oracleDir, name!);
    const rep = await inspect(join(dir, adapterRel!), { base: join(dir, 'base.safetensors') });
    const base = await openCheckpoint(join(dir, 'base.safetensors'));
    const merged = await openCheckpoint(join(dir, 'merged.safetensors'));
    try {
      assert.equal(rep.kind, 'adapter');
      for (const L of rep.layers) {
        const key = L.baseKey ?? `${L.module}.weight`;
        const [w0, w1] = [await base.readF32(key), await merged.readF32(key)];
        const d = w1.map((x, i) => x - w0[i]!);
        const dense = fro(d);
        // merged is rounded to F32 once per element: allow that rounding, nothing more.
        assert.ok(Math.abs(L.normDelta! - dense) <= 1e-5 * dense + 1e-6, `${name} ${L.module}: ${L.normDelta} vs ${dense}`);
        assert.ok(Math.abs(L.relNorm! - dense / fro(w0)) <= 1e-5 * (dense / fro(w0)));
        const s2 = L.singularValues.reduce((s, x) => s + x * x, 0);
        assert.ok(Math.abs(Math.sqrt(s2) - L.normDelta!) <= 1e-9 * L.normDelta!);
        assert.ok(L.singularValues.length <= L.r * (L.enableLora?.filter(Boolean).length ?? 1));
        assert.ok(L.effectiveRank > 0 && L.effectiveRank <= L.singularValues.length + 1e-9);
      }
    } finally { await base.close(); await merged.close(); }
  }
});

test('inspect: ‖s·B·A‖ computed densely from the raw PEFT factors (rsLoRA + patterns)', async () => {
  const dir = join(oracleDir, 'peft-llama-bf16-rslora-patterns');
  const c = readJson(join(dir, 'case.json'));
  const rep = await inspect(join(dir, 'adapter'), {});
  const ad = await openCheckpoint(join(dir, 'adapter/adapter_model.safetensors'));
  try {
    for (const exp of c.layers.slice(0, 3)) {
      const L = rep.layers.find((l) => l.module === exp.module)!;
      const A = await ad.readF32(`base_model.model.${exp.module}.lora_A.weight`);
      const B = await ad.readF32(`base_model.model.${exp.module}.lora_B.weight`);
      const { r, in_features: k, out_features: d } = exp;
      let s2 = 0;
      for (let i = 0; i < d; i++) for (let j = 0; j < k; j++) {
        let v = 0;
        for (let t = 0; t < r; t++) v += B[i * r + t]! * A[t * k + j]!;
        s2 += (exp.scaling * v) ** 2;
      }
      assert.ok(Math.abs(L.normDelta! - Math.sqrt(s2)) <= 1e-9 * Math.sqrt(s2), exp.module);
      assert.ok(Math.abs(L.normBA * exp.scaling - L.normDelta!) <= 1e-9 * L.normDelta!);
      assert.equal(L.relNorm, null);
    }
    assert.equal(rep.parameterCount, ad.tensors.reduce((s, t) => s + t.shape.reduce((p, x) => p * x, 1), 0));
    assert.equal(rep.fileSize, statSync(join(dir, 'adapter/adapter_model.safetensors')).size);
    assert.equal(rep.tensors.length, ad.tensors.length);
  } finally { await ad.close(); }
});

test('inspect: α unknown (loralib without config) → normDelta null, normBA still given', async () => {
  const dir = join(oracleDir, 'loralib-linear');
  const rep = await inspect(join(dir, 'adapter.safetensors'), { config: join(dir, 'case.json') });
  // case.json is not a LoRA config: no lora_alpha key → α unknown.
  for (const L of rep.layers) {
    assert.equal(L.alpha, null);
    assert.equal(L.normDelta, null);
    assert.ok(L.normBA > 0);
  }
  assert.ok(rep.warnings.some((w) => w.code === 'UnknownConfigKey'));
});

test('inspect: a plain checkpoint is reported as kind checkpoint with its tensors', async () => {
  const p = join(oracleDir, 'peft-llama-f16/base.safetensors');
  const rep = await inspect(p, {});
  assert.equal(rep.kind, 'checkpoint');
  assert.equal(rep.format, 'safetensors');
  assert.equal(rep.layers.length, 0);
  assert.equal(rep.tensors.length, 14);
  assert.equal(rep.fileSize, statSync(p).size);
});

test('inspect: kohya with base maps names and gives relNorm', async () => {
  const dir = join(oracleDir, 'kohya-locon-f16');
  const c = readJson(join(dir, 'case.json'));
  const rep = await inspect(join(dir, 'lora.safetensors'), { base: join(dir, 'base.safetensors') });
  for (const exp of c.layers) {
    const L = rep.layers.find((l) => l.module === exp.lora_name)!;
    assert.equal(L.baseKey, exp.base_key);
    assert.ok(L.relNorm! > 0);
  }
  assert.equal(rep.metadata?.['ss_network_dim'], '4');
});
