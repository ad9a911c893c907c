/**
 * Every oracle case (PyTorch reference merges) merged on the TypeScript backend and on ORT CPU, compared with
 * merged.safetensors (F32 within 1e-6, F16/BF16 within 1 ulp); then unmerged back to the base (DoRA: refused).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { isLoraLensError } from '../../../src/core/errors';
import { merge } from '../../../src/core/engine/merge';
import { DORA_UNMERGE_MESSAGE, unmerge } from '../../../src/core/engine/unmerge';
import type { Device } from '../../../src/core/compute/backend';
import { listDir, oracleAdapterSpecs, oracleCases, readSafetensors, tempDir, unmergeExcess, values, worstExcess } from './mergeTestUtil';

const DEVICES: Device[] = ['ts', 'cpu'];

for (const c of oracleCases()) {
  for (const spec of oracleAdapterSpecs(c)) {
    for (const device of DEVICES) {
      const label = `${c.name} (${spec.path.split('/').pop()}) on ${device}`;
      test(`oracle merge: ${label}`, async () => {
        const t = tempDir('oracle');
        try {
          const out = join(t.dir, 'merged.safetensors');
          const report = await merge({
            base: join(c.dir, c.files['base']!),
            adapters: [{ path: spec.path, ...(spec.config ? { config: spec.config } : {}) }],
            out, device,
          });
          if (device === 'cpu') assert.equal(report.device, 'ort-cpu', report.deviceReport.join('; '));
          else assert.equal(report.device, 'ts');
          const got = readSafetensors(out);
          const want = readSafetensors(join(c.dir, c.files['merged']!));
          const base = readSafetensors(join(c.dir, c.files['base']!));
          assert.deepEqual([...got.tensors.keys()].sort(), [...want.tensors.keys()].sort());
          const adapted = new Set(c.layers.map((l) => l.base_key ?? `${l.module}.weight`));
          assert.equal(report.tensorsMerged, adapted.size);
          for (const [name, w] of want.tensors) {
            const g = got.tensors.get(name)!;
            assert.equal(g.dtype, w.dtype, name);
            assert.deepEqual(g.shape, w.shape, name);
            const ex = worstExcess(g, w);
            assert.ok(ex.excess <= 0, `${name}: element ${ex.at} is ${ex.got}, oracle ${ex.want}`);
            if (!adapted.has(name)) assert.deepEqual(g.bytes, base.tensors.get(name)!.bytes, `${name} must be copied byte for byte`);
            else assert.notDeepEqual(g.bytes, base.tensors.get(name)!.bytes, `${name} must change`);
          }
          assert.ok(got.metadata?.['lora_lens.adapters'], 'provenance metadata');
          assert.deepEqual(listDir(t.dir), ['merged.safetensors'], 'no temp files left');
        } finally {
          t.cleanup();
        }
      });

      test(`oracle unmerge: ${label}`, async () => {
        const t = tempDir('oracle-un');
        try {
          const out = join(t.dir, 'restored.safetensors');
          const args = {
            merged: join(c.dir, c.files['merged']!),
            adapter: { path: spec.path, ...(spec.config ? { config: spec.config } : {}) },
            out, device, base: join(c.dir, c.files['base']!),
          };
          if (c.layers.some((l) => l.dora)) {
            await assert.rejects(unmerge(args), (e: unknown) => isLoraLensError(e) && e.kind === 'unsupported' && e.message.includes(DORA_UNMERGE_MESSAGE));
            assert.deepEqual(listDir(t.dir), []);
            return;
          }
          const report = await unmerge(args);
          const got = readSafetensors(out);
          const base = readSafetensors(join(c.dir, c.files['base']!));
          const mergedFile = readSafetensors(join(c.dir, c.files['merged']!));
          for (const [name, b] of base.tensors) {
            const ex = unmergeExcess(got.tensors.get(name)!, b, mergedFile.tensors.get(name)!);
            assert.ok(ex.excess <= 0, `${name}: element ${ex.at} restored ${ex.got}, base ${ex.want}`);
          }
          assert.ok(report.drift && report.drift.length === report.tensorsUnmerged && report.tensorsUnmerged > 0);
          for (const d of report.drift) {
            // the reported drift is the real one
            const r = values(got.tensors.get(d.baseKey)!);
            const b = values(base.tensors.get(d.baseKey)!);
            const maxAbs = r.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
            assert.ok(Math.abs(d.maxAbs - maxAbs) <= 1e-12, `${d.baseKey} drift ${d.maxAbs} vs ${maxAbs}`);
            assert.ok(maxAbs > 0 ? d.maxUlps > 0 : d.maxUlps === 0, `${d.baseKey} ulps ${d.maxUlps}`);
            // one rounding of W' and one of the restored value: at most 1 ulp at the merged magnitude (+ halving slack)
            if (c.dtype !== 'F32') assert.ok(d.maxUlps <= 1.5, `${d.baseKey} drift ${d.maxUlps} ulps`);
            if (c.dtype === 'F32') assert.ok(d.maxAbs <= 1e-6, `${d.baseKey} drift ${d.maxAbs}`);
          }
        } finally {
          t.cleanup();
        }
      });
    }
  }
}
