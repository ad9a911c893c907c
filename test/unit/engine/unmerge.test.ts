/**
 * A small synthetic PEFT adapter with lora_bias and a saved head: merge adds s·B·A to the weight and s·lora_B.bias to
 * the bias and replaces the head; unmerge subtracts both, keeps the head (with a warning), reports drift, and warns
 * when the merged file's provenance names another adapter.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isLoraLensError } from '../../../src/core/errors';
import { merge } from '../../../src/core/engine/merge';
import { unmerge } from '../../../src/core/engine/unmerge';
import { f32Tensor, listDir, readSafetensors, rng, tempDir, values, writeSafetensors } from './mergeTestUtil';

function setup(dir: string, seed: number) {
  const next = rng(seed);
  const r = (n: number) => Array.from({ length: n }, () => next());
  const A = r(2 * 3);
  const B = r(4 * 2);
  const lb = r(4);
  const head = r(2 * 4);
  const adapter = join(dir, `adapter${seed}`);
  mkdirSync(adapter);
  writeFileSync(join(adapter, 'adapter_config.json'), JSON.stringify({
    peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q'], lora_bias: true, modules_to_save: ['score'], fan_in_fan_out: false,
  }));
  writeSafetensors(join(adapter, 'adapter_model.safetensors'), [
    ['base_model.model.l.q.lora_A.weight', f32Tensor([2, 3], A)],
    ['base_model.model.l.q.lora_B.weight', f32Tensor([4, 2], B)],
    ['base_model.model.l.q.lora_B.bias', f32Tensor([4], lb)],
    ['base_model.model.score.weight', f32Tensor([2, 4], head)],
  ], { format: 'pt' });
  return { adapter, A, B, lb, head };
}

test('lora_B.bias adds s·bias to the base bias; a saved head replaces the base head; unmerge undoes the LoRA part', async () => {
  const t = tempDir('unmerge');
  try {
    const next = rng(7);
    const W = Array.from({ length: 12 }, () => next());
    const bias = Array.from({ length: 4 }, () => next());
    const headW = Array.from({ length: 8 }, () => next());
    const base = join(t.dir, 'base.safetensors');
    writeSafetensors(base, [
      ['l.q.weight', f32Tensor([4, 3], W)], ['l.q.bias', f32Tensor([4], bias)], ['score.weight', f32Tensor([2, 4], headW)],
      ['other', f32Tensor([3], [1, 2, 3])],
    ], { format: 'pt' });
    const { adapter, A, B, lb, head } = setup(t.dir, 11);
    const merged = join(t.dir, 'merged.safetensors');
    const rep = await merge({ base, adapters: [{ path: adapter }], out: merged, device: 'ts' });
    assert.equal(rep.tensorsReplaced, 1);
    assert.equal(rep.tensorsMerged, 2);
    const m = readSafetensors(merged);
    const s = 2;
    const mw = values(m.tensors.get('l.q.weight')!);
    for (let o = 0; o < 4; o++) {
      for (let i = 0; i < 3; i++) {
        const want = Math.fround(W[o * 3 + i]!) + s * (B[o * 2]! * A[i]! + B[o * 2 + 1]! * A[3 + i]!);
        assert.ok(Math.abs(mw[o * 3 + i]! - want) < 1e-6, `W[${o},${i}]`);
      }
    }
    const mb = values(m.tensors.get('l.q.bias')!);
    for (let o = 0; o < 4; o++) assert.ok(Math.abs(mb[o]! - (Math.fround(bias[o]!) + s * Math.fround(lb[o]!))) < 1e-6, `bias[${o}]`);
    assert.deepEqual([...values(m.tensors.get('score.weight')!)], [...Float32Array.from(head)]);

    const restored = join(t.dir, 'restored.safetensors');
    const un = await unmerge({ merged, adapter: { path: adapter }, out: restored, base, device: 'ts' });
    assert.equal(un.tensorsUnmerged, 2);
    assert.ok(un.warnings.some((w) => w.code === 'ReplacedNotRestored' && /score\.weight/.test(w.message)));
    assert.ok(!un.warnings.some((w) => w.code === 'ProvenanceMismatch'));
    const r = readSafetensors(restored);
    const b0 = readSafetensors(base);
    for (const k of ['l.q.weight', 'l.q.bias']) {
      const got = values(r.tensors.get(k)!);
      const want = values(b0.tensors.get(k)!);
      got.forEach((x, i) => assert.ok(Math.abs(x - want[i]!) <= 1e-6, `${k}[${i}]`));
    }
    assert.deepEqual(r.tensors.get('other')!.bytes, b0.tensors.get('other')!.bytes);
    assert.deepEqual(un.drift!.map((d) => d.baseKey).sort(), ['l.q.bias', 'l.q.weight']);
    assert.equal(r.metadata?.['lora_lens.operation'], 'unmerge');

    // another adapter than the one merged: still subtracts, but says so
    const other = setup(t.dir, 99);
    const un2 = await unmerge({ merged, adapter: { path: other.adapter }, out: join(t.dir, 'r2.safetensors'), device: 'ts' });
    assert.ok(un2.warnings.some((w) => w.code === 'ProvenanceMismatch'));
    assert.equal(un2.drift, null);

    // unmerge refuses to write over its input
    await assert.rejects(
      unmerge({ merged, adapter: { path: adapter }, out: merged, device: 'ts', overwrite: true }),
      (e: unknown) => isLoraLensError(e) && e.code === 'OutputIsInput',
    );
    assert.deepEqual(listDir(t.dir), ['adapter11', 'adapter99', 'base.safetensors', 'merged.safetensors', 'r2.safetensors', 'restored.safetensors']);
  } finally {
    t.cleanup();
  }
});
