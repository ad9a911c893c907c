import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { diff, lowRankInner, lowRankNorm, outputSingularBasis, subspaceSimilarity, type Factored } from '../../../src/core/engine/diff';
import { jacobiSvd } from '../../../src/core/linalg';
import { Xoshiro128 } from '../../../src/core/engine/rng';
import { oracleCase, readRaw, tempDir, writeRaw } from './parityFixtures';

const near = (a: number | null, b: number, eps: number, what = '') => {
  assert.ok(a !== null && Math.abs(a - b) <= eps, `${what} ${a} vs ${b}`);
};

/** A copy of a PEFT adapter folder with its F32 tensors transformed. */
function copyAdapter(srcDir: string, dst: string, edit: (name: string, v: Float32Array) => Float32Array | null, config?: (c: Record<string, unknown>) => void): string {
  mkdirSync(dst, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(srcDir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  config?.(cfg);
  writeFileSync(join(dst, 'adapter_config.json'), JSON.stringify(cfg));
  const raw = readRaw(join(srcDir, 'adapter_model.safetensors'));
  for (const [name, t] of [...raw.tensors]) {
    assert.equal(t.dtype, 'F32');
    const v = edit(name, new Float32Array(t.bytes.slice().buffer));
    if (v === null) raw.tensors.delete(name);
    else raw.tensors.set(name, { ...t, bytes: new Uint8Array(v.buffer) });
  }
  writeRaw(join(dst, 'adapter_model.safetensors'), raw.tensors, raw.metadata);
  return dst;
}

describe('diff of two adapters', () => {
  const c = oracleCase('peft-llama-f16');

  it('an adapter against itself: cosine 1, subspace similarity 1, nothing changed', async () => {
    const r = await diff({ a: c.spec, b: c.spec });
    assert.equal(r.modules.length, 4);
    for (const m of r.modules) {
      assert.equal(m.status, 'both');
      near(m.cosine, 1, 1e-9, m.module);
      near(m.subspaceSimilarity, 1, 1e-9, m.module);
      assert.equal(m.normA, m.normB);
      assert.equal(m.shapeMismatch, false);
    }
    assert.deepEqual({ ...r.summary, meanCosine: null, minCosine: null }, { both: 4, onlyA: 0, onlyB: 0, meanCosine: null, minCosine: null, rankChanged: 0, alphaChanged: 0 });
    near(r.summary.minCosine, 1, 1e-9);
  });

  it('B negated: cosine −1, same subspace; B scaled by 3: cosine 1, 3× the norm; α doubled: scaling and norm double', async () => {
    const t = tempDir();
    try {
      const neg = copyAdapter(c.spec.path, join(t.dir, 'neg'), (n, v) => (n.includes('lora_B') ? v.map((x) => -x) : v));
      const tri = copyAdapter(c.spec.path, join(t.dir, 'tri'), (n, v) => (n.includes('lora_B') ? v.map((x) => 3 * x) : v));
      const alp = copyAdapter(c.spec.path, join(t.dir, 'alp'), (_, v) => v, (cfg) => { cfg['lora_alpha'] = 32; });
      const rn = await diff({ a: c.spec, b: { path: neg } });
      for (const m of rn.modules) {
        near(m.cosine, -1, 1e-9, m.module);
        near(m.subspaceSimilarity, 1, 1e-9, m.module);
      }
      near(rn.summary.meanCosine, -1, 1e-9);
      const rt = await diff({ a: c.spec, b: { path: tri } });
      for (const m of rt.modules) {
        near(m.cosine, 1, 1e-9, m.module);
        near(m.normB! / m.normA!, 3, 1e-6, m.module);
      }
      const ra = await diff({ a: c.spec, b: { path: alp } });
      assert.equal(ra.summary.alphaChanged, 4);
      for (const m of ra.modules) {
        assert.equal(m.alphaA, 16);
        assert.equal(m.alphaB, 32);
        assert.equal(m.scalingB, 4);
        near(m.normB! / m.normA!, 2, 1e-9, m.module);
        near(m.cosine, 1, 1e-9);
      }
    } finally {
      t.cleanup();
    }
  });

  it('modules only in A or only in B, and a rank change', async () => {
    const t = tempDir();
    try {
      const fewer = copyAdapter(c.spec.path, join(t.dir, 'fewer'), (n, v) => (n.includes('layers.0.self_attn.q_proj') ? null : v));
      const r = await diff({ a: c.spec, b: { path: fewer } });
      const q0 = r.modules.find((m) => m.module === 'model.layers.0.self_attn.q_proj')!;
      assert.equal(q0.status, 'only-a');
      assert.equal(q0.rB, null);
      assert.equal(q0.cosine, null);
      assert.ok(q0.normA! > 0);
      assert.equal(r.summary.onlyA, 1);
      const back = await diff({ a: { path: fewer }, b: c.spec });
      assert.equal(back.summary.onlyB, 1);
      assert.equal(back.modules.find((m) => m.module === 'model.layers.0.self_attn.q_proj')!.status, 'only-b');
    } finally {
      t.cleanup();
    }
    // Two different oracle adapters on the same model: q/v in both (v with r 8 vs 4), k/o/down only in B.
    const r = await diff({ a: c.spec, b: oracleCase('peft-llama-bf16-rslora-patterns').spec });
    assert.deepEqual([r.summary.both, r.summary.onlyA, r.summary.onlyB, r.summary.rankChanged], [4, 0, 6, 2]);
    for (const m of r.modules.filter((x) => x.status === 'both')) {
      assert.ok(m.cosine! >= -1 && m.cosine! <= 1);
      assert.ok(m.subspaceSimilarity! >= 0 && m.subspaceSimilarity! <= 1);
    }
  });

  it('the vendored MergedLinear adapter (BLOOM, 3-D lora_B) against itself', async () => {
    const path = resolve('test/fixtures/real/peftbin-bloom560m-mergedlinear');
    const r = await diff({ a: { path }, b: { path } });
    assert.equal(r.summary.both, 24);
    for (const m of r.modules) {
      near(m.cosine, 1, 1e-9, m.module);
      near(m.subspaceSimilarity, 1, 1e-6, m.module);
    }
  });

  it('real adapters from ../shared (skipped when absent): self-diff is 1', { skip: !existsSync(resolve('../shared/fixtures/real/peft-qwen2.5-0.5b')) }, async () => {
    const path = resolve('../shared/fixtures/real/peft-qwen2.5-0.5b');
    const r = await diff({ a: { path }, b: { path } });
    assert.equal(r.summary.both, 48);
    near(r.summary.minCosine, 1, 1e-9);
  });
});

describe('diff math from factors equals the dense computation', () => {
  function randomFactored(rng: Xoshiro128, rows: number, cols: number, rank: number, outputAxis: 'rows' | 'cols'): Factored {
    const X = Float32Array.from({ length: rows * rank }, () => rng.nextNormal());
    const Y = Float32Array.from({ length: rank * cols }, () => rng.nextNormal());
    return { X, Y, rows, cols, rank, outputAxis };
  }
  const dense = (f: Factored) => {
    const M = new Float64Array(f.rows * f.cols);
    for (let i = 0; i < f.rows; i++) for (let k = 0; k < f.rank; k++) for (let j = 0; j < f.cols; j++) M[i * f.cols + j] += f.X[i * f.rank + k]! * f.Y[k * f.cols + j]!;
    return M;
  };
  /** Top-k left singular vectors (output side) of the dense matrix. */
  const denseBasis = (f: Factored, k: number) => {
    let M = dense(f);
    let m = f.rows, n = f.cols;
    if (f.outputAxis === 'cols') {
      const T = new Float64Array(M.length);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) T[j * m + i] = M[i * n + j]!;
      M = T;
      [m, n] = [n, m];
    }
    const svd = jacobiSvd(M, m, n);
    return { u: svd.u, stride: svd.k, len: m, k };
  };

  for (const [rows, cols, ra, rb, axis] of [[12, 9, 3, 2, 'rows'], [7, 15, 4, 4, 'cols'], [20, 20, 5, 3, 'rows']] as const) {
    it(`${rows}×${cols}, ranks ${ra} and ${rb}, outputs along ${axis}`, () => {
      const rng = new Xoshiro128(rows * 100 + cols, 'diff');
      const a = randomFactored(rng, rows, cols, ra, axis);
      const b = randomFactored(rng, rows, cols, rb, axis);
      const A = dense(a), B = dense(b);
      let ab = 0, aa = 0;
      for (let i = 0; i < A.length; i++) { ab += A[i]! * B[i]!; aa += A[i]! * A[i]!; }
      near(lowRankInner(a, b), ab, 1e-9 * Math.sqrt(aa) * 100, 'inner');
      near(lowRankNorm(a), Math.sqrt(aa), 1e-9 * Math.sqrt(aa), 'norm');
      // φ from the dense SVDs
      const k = Math.min(ra, rb);
      const ua = denseBasis(a, k), ub = denseBasis(b, k);
      let phi = 0;
      for (let p = 0; p < k; p++) for (let q = 0; q < k; q++) {
        let d = 0;
        for (let i = 0; i < ua.len; i++) d += ua.u[i * ua.stride + p]! * ub.u[i * ub.stride + q]!;
        phi += d * d;
      }
      near(subspaceSimilarity(a, b), phi / k, 1e-9, 'phi');
      // The factored basis is orthonormal and spans the dense top-k directions of a.
      const fa = outputSingularBasis(a);
      assert.equal(fa.k, ra);
      near(subspaceSimilarity(a, a), 1, 1e-12);
    });
  }

  it('a zero update has no cosine or subspace', () => {
    const z: Factored = { X: new Float32Array(6), Y: new Float32Array(6), rows: 3, cols: 3, rank: 2, outputAxis: 'rows' };
    assert.equal(subspaceSimilarity(z, z), null);
    assert.equal(lowRankNorm(z), 0);
  });
});

