/**
 * The torch reader against real files: oracle .pt/.bin files compared tensor by tensor with the safetensors
 * files written from the same tensors, and real third-party adapters against digests computed independently.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openTorch } from '../../../src/core/formats/torch/index';

const repoRoot = resolve(__dirname, '../../..');
const oracle = join(repoRoot, 'test/fixtures/oracle');
const sharedReal = resolve(repoRoot, '../shared/fixtures/real');

/** A deliberately tiny safetensors parse, independent of the product's reader. */
function readSafetensors(path: string): Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    out.set(name, { dtype: t.dtype, shape: t.shape, bytes: buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]) });
  }
  return out;
}

async function assertSameTensors(torchPath: string, safetensorsPath: string, pick?: (name: string) => boolean) {
  const expected = readSafetensors(safetensorsPath);
  const ckpt = await openTorch(torchPath);
  try {
    assert.equal(ckpt.format, 'torch-zip');
    assert.equal(ckpt.metadata, null);
    let compared = 0;
    for (const [name, want] of expected) {
      if (pick && !pick(name)) continue;
      const info = ckpt.get(name);
      assert.ok(info, `${name} missing from ${torchPath}`);
      assert.equal(info.dtype, want.dtype, name);
      assert.deepEqual(info.shape, want.shape, name);
      assert.equal(info.byteLength, want.bytes.length, name);
      assert.equal(ckpt.fileOf(name), torchPath);
      const got = await ckpt.readBytes(name);
      assert.ok(Buffer.from(got).equals(Buffer.from(want.bytes)), `${name}: bytes differ`);
      if (want.dtype === 'F32') {
        const f = await ckpt.readF32(name);
        assert.deepEqual(Array.from(f), Array.from(new Float32Array(new Uint8Array(want.bytes).buffer)), name);
      }
      compared++;
    }
    assert.ok(compared > 0);
    return { ckpt: ckpt, compared };
  } finally {
    await ckpt.close();
  }
}

const cases = readdirSync(oracle).filter((c) => existsSync(join(oracle, c, 'case.json')));

for (const c of cases) {
  const dir = join(oracle, c);
  if (existsSync(join(dir, 'adapter.pt'))) {
    test(`oracle ${c}: adapter.pt equals adapter.safetensors`, async () => {
      const { compared } = await assertSameTensors(join(dir, 'adapter.pt'), join(dir, 'adapter.safetensors'));
      const ckpt = await openTorch(join(dir, 'adapter.pt'));
      assert.equal(ckpt.tensors.length, compared, 'no extra tensors in the .pt');
      await ckpt.close();
    });
  }
  if (existsSync(join(dir, 'full_state_dict.pt'))) {
    test(`oracle ${c}: full_state_dict.pt holds base.safetensors and adapter.safetensors`, async () => {
      const base = readSafetensors(join(dir, 'base.safetensors'));
      const adapter = readSafetensors(join(dir, 'adapter.safetensors'));
      const ckpt = await openTorch(join(dir, 'full_state_dict.pt'));
      const names = new Set(ckpt.tensors.map((t) => t.name));
      await ckpt.close();
      // Only the tensors this file holds: the base file may carry more (embeddings) than the saved modules.
      const a = await assertSameTensors(join(dir, 'full_state_dict.pt'), join(dir, 'base.safetensors'), (n) => names.has(n));
      const b = await assertSameTensors(join(dir, 'full_state_dict.pt'), join(dir, 'adapter.safetensors'));
      assert.equal(a.compared + b.compared, names.size, 'every tensor was compared');
      assert.equal(b.compared, adapter.size);
      assert.ok(base.size >= a.compared);
    });
  }
  if (existsSync(join(dir, 'adapter/adapter_model.bin'))) {
    test(`oracle ${c}: adapter_model.bin equals adapter_model.safetensors`, async () => {
      const { compared } = await assertSameTensors(join(dir, 'adapter/adapter_model.bin'), join(dir, 'adapter/adapter_model.safetensors'));
      const ckpt = await openTorch(join(dir, 'adapter/adapter_model.bin'));
      assert.equal(ckpt.tensors.length, compared);
      assert.equal(ckpt.archiveName, 'adapter_model');
      await ckpt.close();
    });
  }
}

test('oracle loralib-gpt2-c_attn: the full state dict really holds non-contiguous (transposed) tensors', async () => {
  // Conv1D weights there were saved as transposed views; the byte equality above is only meaningful
  // for strides if at least one such tensor exists.
  const ckpt = await openTorch(join(oracle, 'loralib-gpt2-c_attn/full_state_dict.pt'));
  assert.ok(ckpt.tensors.some((t) => !t.contiguous));
  await ckpt.close();
});

/**
 * SHA-256 over, per tensor in file order, `name \0 repr(list(shape)) \0 C-order bytes`. Computed with Python's
 * zipfile and pickle modules (a stub find_class, strides gathered element by element), not with this reader.
 */
const REAL = [
  {
    path: join(repoRoot, 'test/fixtures/real/peftbin-bloom560m-mergedlinear/adapter_model.bin'),
    count: 48, archive: 'adapter_model',
    digest: '04c98cda228506c27329d81b584ec0d610865224c3528cf0136cc4e9966bea03',
    sample: ['base_model.model.transformer.h.0.self_attention.query_key_value.lora_B.weight', [2048, 8, 1]],
  },
  {
    path: join(sharedReal, 'peftbin-gpt2-seqcls/adapter_model.bin'),
    count: 49, archive: 'adapter_model',
    digest: 'febf3cbbd6cce910daca2f2d86f26ba517baf23f1d791911f12273a407355e20',
    sample: ['base_model.model.score.weight', [3, 768]],
  },
  {
    path: join(sharedReal, 'loralib-cnclip-bert/lora_weights.pt'),
    count: 48, archive: 'lora_weights',
    digest: '419c9ab57fcdb8ddb972d0d713e78f03768cf262e9c320e2cdd98767a74b33cd',
    sample: ['bert.encoder.layer.0.attention.self.query.lora_B', [768, 16]],
  },
  {
    path: join(sharedReal, 'loralib-gptneox-mergedlinear/lora.pth'),
    count: 48, archive: 'archive',
    digest: 'd17d233acf30f010b3b740064e3f2e4b26ebcca425e4499cc13521434d9e059a',
    sample: ['gpt_neox.layers.0.attention.query_key_value.lora_A', [8, 2048]],
  },
] as const;

for (const r of REAL) {
  test(`real ${r.path.split('/').slice(-2).join('/')}: ${r.count} tensors, bytes match an independent reading`, { skip: !existsSync(r.path) && 'fixture folder absent' }, async () => {
    const ckpt = await openTorch(r.path);
    try {
      assert.equal(ckpt.tensors.length, r.count);
      assert.equal(ckpt.archiveName, r.archive);
      assert.deepEqual(ckpt.get(r.sample[0])?.shape, r.sample[1]);
      const h = createHash('sha256');
      for (const t of ckpt.tensors) {
        assert.equal(t.dtype, 'F32');
        const bytes = await ckpt.readBytes(t.name);
        assert.equal(bytes.length, t.byteLength);
        h.update(`${t.name}\0[${t.shape.join(', ')}]\0`);
        h.update(bytes);
        const f = await ckpt.readF32(t.name);
        assert.ok(f.every(Number.isFinite), `${t.name} has non-finite values`);
      }
      assert.equal(h.digest('hex'), r.digest);
    } finally {
      await ckpt.close();
    }
  });
}
