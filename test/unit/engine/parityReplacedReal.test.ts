/**
 * The real SEQ_CLS adapter ../shared/fixtures/real/peft-gpt2-seqcls (skipped when absent) saves its full `score.weight`
 * head [6, 768] in F32 although modules_to_save is null. Cut to block 0's c_attn plus the head and merged into a
 * synthetic F16 GPT-2 base, parity must check the head (the adapter's values rounded once to F16), and catch a merge
 * that keeps the base's random head or rounds the head the wrong way.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadAdapter } from '../../../src/core/adapter/load';
import { disposeBackends } from '../../../src/core/compute/select';
import { fromF32 } from '../../../src/core/convert';
import { merge } from '../../../src/core/engine/merge';
import { parity } from '../../../src/core/engine/parity';
import { readRaw, tempDir, writeRaw, type RawTensor } from './parityFixtures';
import { realDir, rng } from './mergeTestUtil';

after(() => disposeBackends());

const src = join(realDir, 'peft-gpt2-seqcls');
const HEAD = 'score.weight';
const C_ATTN = 'transformer.h.0.attn.c_attn';

test('real peft-gpt2-seqcls: the saved score head is checked by parity', { skip: existsSync(src) ? false : 'real fixtures absent' }, async () => {
  const t = tempDir();
  try {
    const full = await loadAdapter(src);
    const tensors = new Map<string, RawTensor>();
    let headKey = '';
    try {
      const layer = full.layers.find((l) => l.module === C_ATTN)!;
      const head = full.replacedTensors.find((r) => r.baseKey === HEAD)!;
      assert.ok(layer && head, 'the fixture has block 0 c_attn and a score head');
      headKey = head.key;
      for (const k of [layer.aKey, layer.bKey, head.key]) {
        const info = full.checkpoint.get(k)!;
        tensors.set(k, { dtype: info.dtype, shape: [...info.shape], bytes: await full.checkpoint.readBytes(k) });
      }
    } finally {
      await full.checkpoint.close();
    }
    const adapterDir = join(t.dir, 'adapter');
    mkdirSync(adapterDir);
    writeRaw(join(adapterDir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
    copyFileSync(join(src, 'adapter_config.json'), join(adapterDir, 'adapter_config.json'));

    const next = rng(0x9e7);
    const f16 = (shape: number[]): RawTensor => {
      const v = Float32Array.from({ length: shape.reduce((p, x) => p * x, 1) }, () => 0.2 * next());
      return { dtype: 'F16', shape, bytes: fromF32(v, 'F16') };
    };
    const baseHead = f16([6, 768]);
    const base = join(t.dir, 'base.safetensors');
    writeRaw(base, new Map([
      [`${C_ATTN}.weight`, f16([768, 2304])],
      [`${C_ATTN}.bias`, f16([2304])],
      [HEAD, baseHead],
    ]), { format: 'pt' });

    const merged = join(t.dir, 'merged.safetensors');
    await merge({ base, adapters: [{ path: adapterDir }], out: merged, device: 'ts' });
    const run = (m: string) => parity({ base, adapter: { path: adapterDir }, merged: m, device: 'ts', probes: 16 });

    const ok = await run(merged);
    assert.equal(ok.pass, true, JSON.stringify(ok.layers.filter((l) => !l.pass)));
    assert.deepEqual(ok.layers.map((l) => [l.module, l.check ?? 'forward']), [[C_ATTN, 'forward'], [HEAD, 'replaced']]);

    const withHead = (name: string, head: RawTensor) => {
      const { tensors: m, metadata } = readRaw(merged);
      m.set(HEAD, head);
      const p = join(t.dir, `${name}.safetensors`);
      writeRaw(p, m, metadata);
      return p;
    };
    const kept = await run(withHead('kept', baseHead));
    assert.equal(kept.pass, false);
    assert.equal(kept.layers.find((l) => l.module === C_ATTN)!.pass, true);
    const h = kept.layers.find((l) => l.module === HEAD)!;
    assert.equal(h.pass, false);
    assert.match(h.diagnosis!, /^not replaced: still the base's tensor/);

    // The head truncated to F16 (round toward zero) instead of rounded to nearest: some values are 1 ulp off.
    const f32 = new Uint32Array(Uint8Array.from(tensors.get(headKey)!.bytes).buffer);
    const trunc = Uint16Array.from(f32, (b) => ((b >>> 16) & 0x8000) | ((b & 0x7fffffff) < 0x38800000 ? 0 : ((b & 0x7fffffff) - 0x38000000) >>> 13));
    const wrong = await run(withHead('trunc', { dtype: 'F16', shape: [6, 768], bytes: new Uint8Array(trunc.buffer) }));
    const w = wrong.layers.find((l) => l.module === HEAD)!;
    assert.equal(w.pass, false);
    assert.match(w.diagnosis!, /^replaced with something else: \d+ of 4608 values differ/);
  } finally {
    t.cleanup();
  }
});
