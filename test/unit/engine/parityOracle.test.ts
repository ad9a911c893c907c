import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { loadAdapter } from '../../../src/core/adapter/load';
import type { Device } from '../../../src/core/compute/backend';
import { selectBackend } from '../../../src/core/compute/select';
import { openCheckpoint } from '../../../src/core/formats/open';
import { forwardPair, parity } from '../../../src/core/engine/parity';
import { disposeBackends } from '../../../src/core/compute/select';
import { ORACLE_CASES, oracleCase } from './parityFixtures';

after(() => disposeBackends());

describe('parity on the oracle cases', () => {
  for (const device of ['ts', 'cpu'] as Device[]) {
    for (const name of ORACLE_CASES) {
      it(`${name}: the PyTorch merge passes (${device})`, async () => {
        const c = oracleCase(name);
        const r = await parity({ base: c.base, adapter: c.spec, merged: c.merged, device });
        assert.equal(r.layers.length, c.json.layers.length);
        for (const l of r.layers) {
          assert.ok(l.pass, `${l.module}: ${l.maxAbsDiff} > ${l.tolerance} (${l.diagnosis})`);
          assert.equal(l.diagnosis, null);
          assert.ok(l.tolerance > 0 && Number.isFinite(l.tolerance));
          // s* recovers the configured scaling from W' − W0 (to the storage precision).
          const rel = c.json.dtype === 'F32' ? 1e-5 : 1e-3;
          assert.ok(Math.abs(l.estimatedScaling! - l.expectedScaling!) <= rel * Math.abs(l.expectedScaling!), `${l.module}: s* ${l.estimatedScaling} vs ${l.expectedScaling}`);
        }
        const scalings = new Map(c.json.layers.map((l) => [l.module, l.scaling]));
        for (const l of r.layers) {
          const s = scalings.get(l.module);
          if (s !== undefined) assert.ok(Math.abs(l.expectedScaling! - s) < 1e-9 * s, `${l.module}: scaling ${l.expectedScaling} vs case.json ${s}`);
        }
        assert.ok(r.pass);
        assert.equal(r.probes, 64);
        assert.equal(r.seed, 0);
        assert.equal(r.mergedPath, c.merged);
      });
    }
  }

  it('the in-memory merge passes too, and the tolerance factor scales the tolerance', async () => {
    const c = oracleCase('peft-llama-bf16-rslora-patterns');
    const r1 = await parity({ base: c.base, adapter: c.spec, device: 'ts' });
    assert.ok(r1.pass);
    assert.equal(r1.mergedPath, null);
    const r2 = await parity({ base: c.base, adapter: c.spec, device: 'ts', toleranceFactor: 2 });
    r1.layers.forEach((l, i) => assert.ok(Math.abs(r2.layers[i]!.tolerance - 2 * l.tolerance) <= 1e-12 * l.tolerance));
  });

  it('the same seed gives the same result and another seed other probes', async () => {
    const c = oracleCase('peft-llama-f16');
    const a = await parity({ base: c.base, adapter: c.spec, merged: c.merged, device: 'ts', seed: 5, probes: 8 });
    const b = await parity({ base: c.base, adapter: c.spec, merged: c.merged, device: 'ts', seed: 5, probes: 8 });
    const d = await parity({ base: c.base, adapter: c.spec, merged: c.merged, device: 'ts', seed: 6, probes: 8 });
    assert.deepEqual(a.layers.map((l) => l.maxAbsDiff), b.layers.map((l) => l.maxAbsDiff));
    assert.notDeepEqual(a.layers.map((l) => l.maxAbsDiff), d.layers.map((l) => l.maxAbsDiff));
    assert.equal(a.probes, 8);
  });

  it('rejects bad probe counts and tolerance factors as input errors', async () => {
    const c = oracleCase('loralib-linear');
    await assert.rejects(parity({ base: c.base, adapter: c.spec, probes: 0 }), { kind: 'input' });
    await assert.rejects(parity({ base: c.base, adapter: c.spec, toleranceFactor: -1 }), { kind: 'input' });
  });
});

describe('forward values against the oracle probes', () => {
  for (const name of ORACLE_CASES.filter((n) => oracleCase(n).probes)) {
    it(`${name}: our y_merged / y_unmerged match PyTorch's, and PyTorch's pair is within our tolerance`, async () => {
      const c = oracleCase(name);
      const base = await openCheckpoint(c.base);
      const merged = await openCheckpoint(c.merged);
      const probes = await openCheckpoint(c.probes!);
      const adapter = await loadAdapter(c.spec.path, c.spec.config ? { configPath: c.spec.config } : {});
      const { backend } = await selectBackend('ts');
      try {
        let checked = 0;
        for (const layer of adapter.layers) {
          if (!probes.get(`${layer.module}.x`)) continue;
          const x = await probes.readF32(`${layer.module}.x`);
          const yM = await probes.readF32(`${layer.module}.y_merged`);
          const yU = await probes.readF32(`${layer.module}.y_unmerged`);
          const p = probes.get(`${layer.module}.x`)!.shape[0]!;
          const [A, B] = await Promise.all([adapter.checkpoint.readF32(layer.aKey), adapter.checkpoint.readF32(layer.bKey)]);
          const m = layer.magnitudeKey ? await adapter.checkpoint.readF32(layer.magnitudeKey) : null;
          const w0 = await base.readF32(layer.baseKey!);
          const wm = await merged.readF32(layer.baseKey!);
          const f = await forwardPair(backend, layer, A, B, layer.scaling!, w0, wm, merged.get(layer.baseKey!)!.dtype, x, p, m);
          assert.equal(f.yMerged.length, yM.length);
          // Not vacuous: the same adapter at a slightly wrong scaling falls outside (F32 resolves 1 %; 16-bit
          // storage rounding hides small relative changes of a small update, so there a doubled α).
          const k = c.json.dtype === 'F32' ? 1.01 : 2;
          const wrong = await forwardPair(backend, layer, A, B, k * layer.scaling!, w0, wm, merged.get(layer.baseKey!)!.dtype, x, p, m);
          let dWrong = 0;
          for (let i = 0; i < yM.length; i++) dWrong = Math.max(dWrong, Math.abs(f.yMerged[i]! - wrong.yUnmerged[i]!));
          assert.ok(dWrong > f.tolerance, `${layer.module}: scaling ×${k} (${dWrong}) hides inside the tolerance ${f.tolerance}`);
          // loralib layers keep nn.Linear's bias in the probe outputs; it is not part of the weight under test.
          const biasKey = layer.baseKey!.replace(/\.weight$/, '.bias');
          if (base.get(biasKey)) {
            const bias = await base.readF32(biasKey);
            for (let i = 0; i < yM.length; i++) {
              f.yMerged[i] = f.yMerged[i]! + bias[i % f.out]!;
              f.yUnmerged[i] = f.yUnmerged[i]! + bias[i % f.out]!;
            }
          }
          let dM = 0, dU = 0, dPair = 0;
          for (let i = 0; i < yM.length; i++) {
            dM = Math.max(dM, Math.abs(f.yMerged[i]! - yM[i]!));
            dU = Math.max(dU, Math.abs(f.yUnmerged[i]! - yU[i]!));
            dPair = Math.max(dPair, Math.abs(yM[i]! - yU[i]!));
          }
          assert.ok(dM <= f.tolerance, `${layer.module}: y_merged off by ${dM} (tol ${f.tolerance})`);
          assert.ok(dU <= f.tolerance, `${layer.module}: y_unmerged off by ${dU} (tol ${f.tolerance})`);
          assert.ok(dPair <= f.tolerance, `${layer.module}: PyTorch's own pair differs by ${dPair} (tol ${f.tolerance})`);
          checked++;
        }
        assert.ok(checked > 0);
      } finally {
        await Promise.all([base.close(), merged.close(), probes.close(), adapter.checkpoint.close()]);
      }
    });
  }
});
