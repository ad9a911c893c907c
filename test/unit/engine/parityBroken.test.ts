/**
 * Deliberately broken merges built from the oracle cases: each must fail parity on the broken layer only, with the
 * right one-sentence diagnosis.
 */
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadAdapter } from '../../../src/core/adapter/load';
import { disposeBackends } from '../../../src/core/compute/select';
import { storedFactors } from '../../../src/core/engine/delta';
import { parity } from '../../../src/core/engine/parity';
import type { ParityReport } from '../../../src/core/reports';
import { addUpdate, oracleCase, tempDir, writeMerged, type Breaker } from './parityFixtures';

after(() => disposeBackends());

async function broken(caseName: string, breaker: Breaker, device: 'ts' | 'cpu' = 'ts'): Promise<ParityReport> {
  const c = oracleCase(caseName);
  const t = tempDir();
  try {
    const merged = await writeMerged(c, t.dir, breaker);
    return await parity({ base: c.base, adapter: c.spec, merged, device });
  } finally {
    t.cleanup();
  }
}

/** Exactly the layers whose module matches `bad` fail. */
function onlyFails(r: ParityReport, bad: (m: string) => boolean) {
  assert.equal(r.pass, false);
  const failed = r.layers.filter((l) => !l.pass);
  assert.ok(failed.length > 0);
  for (const l of r.layers) assert.equal(l.pass, !bad(l.module), `${l.module}: pass=${l.pass} (${l.diagnosis})`);
  for (const l of failed) {
    assert.ok(l.maxAbsDiff > l.tolerance);
    assert.equal(typeof l.diagnosis, 'string');
  }
  return failed;
}

describe('broken merges are caught and diagnosed', () => {
  it('α doubled (F16): merged twice or with α=32', async () => {
    const bad = (m: string) => m === 'model.layers.0.self_attn.q_proj';
    const r = await broken('peft-llama-f16', ({ layer, w0, U, scaling }) => (bad(layer.module) ? addUpdate(w0, U, 2 * scaling) : null));
    const [l] = onlyFails(r, bad);
    assert.match(l!.diagnosis!, /twice/);
    assert.match(l!.diagnosis!, /α=32 was used, config says 16/);
    assert.ok(Math.abs(l!.estimatedScaling! - 4) < 0.01, `s* = ${l!.estimatedScaling}`);
    assert.equal(l!.expectedScaling, 2);
  });

  it('merged twice (BF16, two roundings): names both possibilities', async () => {
    const bad = (m: string) => m === 'model.layers.1.self_attn.v_proj';
    const r = await broken('peft-llama-bf16-rslora-patterns', ({ layer, w0, U, scaling, round }) =>
      bad(layer.module) ? addUpdate(round(addUpdate(w0, U, scaling)), U, scaling) : null);
    const [l] = onlyFails(r, bad);
    assert.match(l!.diagnosis!, /^merged twice, or merged with scaling 2× the config's/);
    assert.ok(Math.abs(l!.estimatedScaling! / l!.expectedScaling! - 2) < 0.01);
  });

  it('α halved (F32): merged with scaling 0.5× and α=8', async () => {
    const bad = (m: string) => m === 'encoder.layer.1.attention.self.query';
    const r = await broken('loralib-linear', ({ layer, w0, U, scaling }) => (bad(layer.module) ? addUpdate(w0, U, 0.5 * scaling) : null));
    const [l] = onlyFails(r, bad);
    assert.match(l!.diagnosis!, /^merged with scaling 1, 0\.5× the config's 2 \(α=8 was used, config says 16; or α was ignored/);
  });

  it('rsLoRA ignored (α/r used where the config says α/√r)', async () => {
    const bad = (m: string) => m === 'model.layers.0.self_attn.o_proj';
    const r = await broken('peft-llama-bf16-rslora-patterns', ({ layer, w0, U }) =>
      bad(layer.module) ? addUpdate(w0, U, layer.alpha! / layer.r) : null);
    const [l] = onlyFails(r, bad);
    assert.match(l!.diagnosis!, /α\/r was used where the config says use_rslora/);
  });

  it('not merged: merged weights equal the base', async () => {
    const c = oracleCase('peft-gpt2-fan_in_fan_out');
    const t = tempDir();
    try {
      const merged = join(t.dir, 'same-as-base.safetensors');
      copyFileSync(c.base, merged);
      const r = await parity({ base: c.base, adapter: c.spec, merged, device: 'cpu' });
      assert.equal(r.pass, false);
      for (const l of r.layers) {
        assert.equal(l.pass, false);
        assert.equal(l.diagnosis, 'not merged (merged weights equal the base)');
        assert.equal(l.estimatedScaling, 0);
      }
    } finally {
      t.cleanup();
    }
  });

  it('one layer left unmerged among merged ones (kohya conv, F16)', async () => {
    const bad = (m: string) => m.endsWith('resnets_0_conv1');
    const r = await broken('kohya-locon-f16', ({ layer, w0 }) => (bad(layer.module) ? w0 : null));
    const [l] = onlyFails(r, bad);
    assert.match(l!.diagnosis!, /^not merged/);
  });

  it('wrong enable_lora mask: loralib GPT-2 c_attn merged with [true,true,false]', async () => {
    const c = oracleCase('loralib-gpt2-c_attn');
    const bad = (m: string) => m === 'transformer.h.0.attn.c_attn';
    const r = await broken(c.name, async ({ layer, adapter, w0, scaling }) => {
      if (!bad(layer.module)) return null;
      const wrong = { ...layer, enableLora: [true, true, false] };
      const [A, B] = await Promise.all([adapter.checkpoint.readF32(layer.aKey), adapter.checkpoint.readF32(layer.bKey)]);
      const f = storedFactors(wrong, A, B);
      const v = Float32Array.from(w0);
      for (let i = 0; i < f.rows; i++) {
        for (let j = 0; j < f.cols; j++) {
          let d = 0;
          for (let k = 0; k < f.rank; k++) d += f.X[i * f.rank + k]! * f.Y[k * f.cols + j]!;
          v[i * f.cols + j] = w0[i * f.cols + j]! + scaling * d;
        }
      }
      return v;
    });
    const [l] = onlyFails(r, bad);
    assert.match(l!.diagnosis!, /^wrong enable_lora blocks/);
    assert.match(l!.diagnosis!, /update found in block k \(the update meant for v\)/);
    assert.match(l!.diagnosis!, /none in enabled block v/);
    assert.match(l!.diagnosis!, /config enables q,v/);
  });

  it('transposed update on a square layer (fan_in_fan_out mix-up)', async () => {
    const bad = (m: string) => m === 'encoder.layer.0.attention.self.query';
    const r = await broken('loralib-linear', ({ layer, w0, U, rows, scaling }) => {
      if (!bad(layer.module)) return null;
      return Float32Array.from(w0, (w, idx) => w + scaling * U[(idx % rows) * rows + Math.floor(idx / rows)]!);
    });
    const [l] = onlyFails(r, bad);
    assert.match(l!.diagnosis!, /^transposed \(fan_in_fan_out mix-up\)/);
    assert.ok(Math.abs(l!.estimatedScaling! - 2) < 1e-4);
  });

  it('a corrupted row is located', async () => {
    const bad = (m: string) => m === 'model.layers.1.self_attn.k_proj';
    const r = await broken('peft-llama-bf16-rslora-patterns', ({ layer, w0, U, cols, scaling }) => {
      if (!bad(layer.module)) return null;
      const v = addUpdate(w0, U, scaling);
      for (let j = 0; j < cols; j++) v[7 * cols + j] = v[7 * cols + j]! + (j % 3 === 0 ? 0.5 : -0.25);
      return v;
    });
    const [l] = onlyFails(r, bad);
    assert.match(l!.diagnosis!, /^changes outside the adapter's update in row 7 \(max \|residual\| 0\.5\d* at row 7, col \d+\)/);
    assert.ok(Math.abs(l!.estimatedScaling! / l!.expectedScaling! - 1) < 0.01, `s* ${l!.estimatedScaling}`);
  });

  it('the update subtracted instead of added', async () => {
    const bad = (m: string) => m === 'transformer.h.1.attn.c_attn';
    const r = await broken('peft-gpt2-fan_in_fan_out', ({ layer, w0, U, scaling }) => (bad(layer.module) ? addUpdate(w0, U, -scaling) : null), 'cpu');
    const [l] = onlyFails(r, bad);
    assert.match(l!.diagnosis!, /^the update was subtracted/);
  });

  it('DoRA merged as plain LoRA (the magnitude vector ignored)', async () => {
    // The helper's default merge is W0 + s·ΔW, which is exactly this mistake for every DoRA layer.
    const r = await broken('peft-dora-embedding-f32', () => null);
    for (const l of r.layers.filter((x) => x.module !== 'model.embed_tokens')) {
      assert.equal(l.pass, false);
      assert.match(l.diagnosis!, /^merged as plain LoRA: the DoRA magnitude vector/);
    }
    assert.equal(r.layers.find((x) => x.module === 'model.embed_tokens')!.pass, true);
  });

  it('DoRA merged with α doubled', async () => {
    const bad = (m: string) => m === 'model.layers.0.self_attn.v_proj';
    const r = await broken('peft-dora-embedding-f32', async ({ layer, adapter, w0, U, rows, cols, scaling }) => {
      if (!layer.magnitudeKey) return null;
      const m = await adapter.checkpoint.readF32(layer.magnitudeKey);
      const v = addUpdate(w0, U, (bad(layer.module) ? 2 : 1) * scaling);
      for (let i = 0; i < rows; i++) {
        let n = 0;
        for (let j = 0; j < cols; j++) n += v[i * cols + j]! ** 2;
        const f = m[i]! / Math.sqrt(n);
        for (let j = 0; j < cols; j++) v[i * cols + j] = f * v[i * cols + j]!;
      }
      return v;
    });
    const [l] = onlyFails(r, bad);
    assert.match(l!.diagnosis!, /^merged twice, or merged with scaling 2× the config's \(α=16 was used, config says 8\).*\(DoRA\)$/);
  });

  it('non-finite values are reported as such', async () => {
    const bad = (m: string) => m === 'model.layers.0.self_attn.v_proj';
    const r = await broken('peft-llama-f16', ({ layer, w0, U, scaling }) => {
      if (!bad(layer.module)) return null;
      const v = addUpdate(w0, U, scaling);
      v[3 * 64 + 5] = NaN;
      return v;
    });
    const [l] = onlyFails(r, bad);
    assert.match(l!.diagnosis!, /^non-finite values \(NaN\/Inf\) in the merged weights \(first at row 3, col 5\)/);
  });

  it('a merged file without the tensor, or with a transposed shape, fails with a diagnosis', async () => {
    const c = oracleCase('peft-gpt2-fan_in_fan_out');
    const t = tempDir();
    try {
      const { readRaw, writeRaw } = await import('./parityFixtures');
      const raw = readRaw(c.merged);
      const k0 = 'transformer.h.0.attn.c_attn.weight';
      const k1 = 'transformer.h.1.attn.c_attn.weight';
      raw.tensors.delete(k0);
      const e = raw.tensors.get(k1)!;
      raw.tensors.set(k1, { ...e, shape: [e.shape[1]!, e.shape[0]!] });
      const merged = join(t.dir, 'm.safetensors');
      writeRaw(merged, raw.tensors, raw.metadata);
      const r = await parity({ base: c.base, adapter: c.spec, merged, device: 'ts' });
      assert.match(r.layers[0]!.diagnosis!, /^missing from the merged checkpoint/);
      assert.match(r.layers[1]!.diagnosis!, /^transposed \(fan_in_fan_out mix-up\): the merged tensor has shape \[144, 48\]/);
      assert.equal(r.pass, false);
    } finally {
      t.cleanup();
    }
  });

  it('an adapter loaded with the wrong α fails against the correct merge (same diagnosis path, from the other side)', async () => {
    const c = oracleCase('loralib-linear');
    const r = await parity({ base: c.base, adapter: { ...c.spec, alpha: 32 }, merged: c.merged, device: 'ts' });
    assert.equal(r.pass, false);
    for (const l of r.layers) {
      assert.equal(l.expectedScaling, 4);
      assert.match(l.diagnosis!, /0\.5× the config's 4 \(α=16 was used, config says 32\)/);
    }
    const adapter = await loadAdapter(c.spec.path, { configPath: c.spec.config! });
    await adapter.checkpoint.close();
  });
});
