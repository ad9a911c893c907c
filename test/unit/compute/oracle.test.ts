// Merging the oracle cases' linear layers with the factors built by hand (X = B, Y = A, scale from case.json) must
// land within the oracle tolerances of PyTorch's merged weights, on every backend.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ComputeBackend } from '../../../src/core/compute/backend';
import { TsBackend } from '../../../src/core/compute/ts/backend';
import { OrtBackend } from '../../../src/core/compute/ort/backend';
import { defaultOrtLoader } from '../../../src/core/compute/ort/loader';
import { transpose } from '../../../src/core/engine/delta';
import { openSafetensors } from '../../../src/core/formats/safetensors/reader';
import { ordinals, values, type Storage } from './helpers';

const ORACLE = resolve(__dirname, '../../fixtures/oracle');

interface CaseLayer {
  module: string;
  base_key?: string;
  r: number;
  scaling: number;
  fan_in_fan_out: boolean;
  in_features: number;
  out_features: number;
  enable_lora?: boolean[];
}
interface Case {
  dtype: Storage;
  format: 'peft' | 'loralib';
  files: { adapter: string; base: string; merged: string };
  layers: CaseLayer[];
}

const backends: ComputeBackend[] = [new TsBackend()];
before(async () => {
  const ort = await defaultOrtLoader();
  backends.push(new OrtBackend(ort, 'cpu', { threads: 2 }), new OrtBackend(ort, 'cpu', { threads: 2, nativeF16: false }));
});
after(() => Promise.all(backends.map((b) => b.dispose())));

for (const name of ['peft-llama-f16', 'peft-llama-bf16-rslora-patterns', 'loralib-linear']) {
  test(`oracle ${name}: merged linear layers within tolerance on every backend`, async () => {
    const dir = join(ORACLE, name);
    const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as Case;
    const adapterFile = c.format === 'peft' ? join(dir, c.files.adapter, 'adapter_model.safetensors') : join(dir, c.files.adapter);
    const [base, adapter, merged] = await Promise.all([
      openSafetensors(join(dir, c.files.base)),
      openSafetensors(adapterFile),
      openSafetensors(join(dir, c.files.merged)),
    ]);
    try {
      assert.ok(c.layers.length > 0);
      for (const layer of c.layers) {
        assert.ok(!layer.enable_lora || layer.enable_lora.every(Boolean), 'grouped MergedLinear layers are out of scope here');
        const key = layer.base_key ?? `${layer.module}.weight`;
        const aKey = c.format === 'peft' ? `base_model.model.${layer.module}.lora_A.weight` : `${layer.module}.lora_A`;
        const bKey = c.format === 'peft' ? `base_model.model.${layer.module}.lora_B.weight` : `${layer.module}.lora_B`;
        const info = base.info(key);
        assert.equal(info.dtype, c.dtype);
        const [m, n] = info.shape as [number, number];
        const A = await adapter.readF32(aKey); // r × in
        const B = await adapter.readF32(bKey); // out × r
        const r = layer.r;
        assert.equal(A.length, r * layer.in_features);
        assert.equal(B.length, layer.out_features * r);
        // W is (out × in), or (in × out) with fan_in_fan_out: then ΔW = (B·A)ᵀ = Aᵀ·Bᵀ
        const term = layer.fan_in_fan_out
          ? { X: transpose(A, r, layer.in_features), Y: transpose(B, layer.out_features, r), rank: r, scale: layer.scaling }
          : { X: B, Y: A, rank: r, scale: layer.scaling };
        const w = await base.readBytes(key);
        const want = await merged.readBytes(key);
        const wv = values(w, c.dtype);
        const wantV = values(want, c.dtype);
        const wantO = ordinals(want, c.dtype);
        let changed = 0;
        for (let i = 0; i < m * n; i++) if (wv[i] !== wantV[i]) changed++;
        assert.ok(changed > (m * n) / 2, `${key}: the oracle merge changes most values (${changed})`);
        for (const b of backends) {
          const out = new Uint8Array(w.length);
          await b.applyLowRank(w, c.dtype, m, n, [term], out);
          const gotV = values(out, c.dtype);
          const gotO = ordinals(out, c.dtype);
          let worst = 0;
          for (let i = 0; i < m * n; i++) {
            const err = c.dtype === 'F32' ? Math.abs(gotV[i]! - wantV[i]!) : Math.abs(gotO[i]! - wantO[i]!);
            worst = Math.max(worst, err);
          }
          const tol = c.dtype === 'F32' ? 1e-6 : 1;
          assert.ok(worst <= tol, `${name} ${key} on ${b.name}: worst error ${worst} (${c.dtype === 'F32' ? 'abs' : 'ulp'}) > ${tol}`);
        }
      }
    } finally {
      await Promise.all([base.close(), adapter.close(), merged.close()]);
    }
  });
}
