/**
 * The fused parity pass (rowStats.ts) against plain per-element loops: D = W' − c·W0 in fp32, the three row norms and
 * h_i = √Σ (ulp(W'_ij)/2)² computed with tolerance.ulp one element at a time. Bit-identical, on every path (pairs of
 * halves, single halves, unaligned views, fp32 with a DoRA factor), with subnormals, zeros, Inf and NaN mixed in.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromF32, toF32 } from '../../../src/core/convert';
import type { Dtype } from '../../../src/core/dtype';
import { Xoshiro128 } from '../../../src/core/engine/rng';
import { rowStats16, rowStats32 } from '../../../src/core/engine/rowStats';
import { halfUlpRowNorms, ulp } from '../../../src/core/engine/tolerance';

function values(n: number, seed: number, specials: boolean): Float32Array {
  const rng = new Xoshiro128(seed, 'rowStats');
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.nextNormal() * 0.05 * 2 ** ((rng.nextU32() % 9) - 4);
  if (specials && n > 12) {
    v[1] = 0; v[2] = -0; v[3] = 3e-7; v[4] = -6e-8; v[5] = 1e-40; v[6] = 60000; v[7] = -(2 ** -14);
    v[n - 1] = Infinity; v[n - 3] = NaN;
  }
  return v;
}

/** The reference: one element at a time, fp64 sums in storage order. */
function reference(wm: Float32Array, w0: Float32Array, rows: number, cols: number, dtype: Dtype, c: Float64Array | null) {
  const D = new Float32Array(rows * cols);
  const sums = { m: new Float64Array(rows), b: new Float64Array(rows), d: new Float64Array(rows), h: new Float64Array(rows) };
  for (let i = 0; i < rows; i++) {
    let m = 0, b = 0, d = 0, h = 0;
    for (let j = 0; j < cols; j++) {
      const k = i * cols + j;
      D[k] = wm[k]! - (c ? c[i]! : 1) * w0[k]!;
      m += wm[k]! * wm[k]!;
      b += w0[k]! * w0[k]!;
      d += D[k]! * D[k]!;
      const half = Number.isFinite(wm[k]!) ? ulp(wm[k]!, dtype) / 2 : Infinity;
      h += half * half;
    }
    sums.m[i] = Math.sqrt(m); sums.b[i] = Math.sqrt(b); sums.d[i] = Math.sqrt(d); sums.h[i] = Math.sqrt(h);
  }
  return { D, ...sums };
}

function assertSame(got: ReturnType<typeof rowStats32>, want: ReturnType<typeof reference>, what: string) {
  assert.deepEqual(Array.from(got.D), Array.from(want.D), `${what}: D`);
  assert.deepEqual(Array.from(got.mergedNorms), Array.from(want.m), `${what}: ‖W'‖`);
  assert.deepEqual(Array.from(got.baseNorms), Array.from(want.b), `${what}: ‖W0‖`);
  assert.deepEqual(Array.from(got.diffNorms), Array.from(want.d), `${what}: ‖D‖`);
  assert.deepEqual(Array.from(got.halfUlp), Array.from(want.h), `${what}: h`);
}

/** Stored halves at a chosen byte offset inside a larger buffer (offset 2 makes the view unaligned for u32). */
function halves(v: Float32Array, dtype: 'F16' | 'BF16', byteOffset: number): Uint16Array {
  const bytes = fromF32(v, dtype);
  const buf = new Uint8Array(bytes.byteLength + 8);
  buf.set(bytes, byteOffset);
  return new Uint16Array(buf.buffer, byteOffset, v.length);
}

describe('rowStats16 (stored halves, read directly)', () => {
  const cases: [string, number, number, 'F16' | 'BF16', 'F16' | 'BF16', number][] = [
    ['F16/F16, even cols (pairs)', 7, 64, 'F16', 'F16', 0],
    ['BF16/BF16, even cols (pairs)', 5, 34, 'BF16', 'BF16', 0],
    ['F16 merged over a BF16 base', 4, 18, 'F16', 'BF16', 0],
    ['F16/F16, odd cols', 6, 33, 'F16', 'F16', 0],
    ['BF16/BF16, unaligned views', 3, 40, 'BF16', 'BF16', 2],
  ];
  for (const [what, rows, cols, md, bd, off] of cases) {
    it(what, () => {
      const wmRounded = toF32(fromF32(values(rows * cols, 1, true), md), md);
      const w0Rounded = toF32(fromF32(values(rows * cols, 2, false), bd), bd);
      const got = rowStats16(halves(wmRounded, md, off), md, halves(w0Rounded, bd, off), bd, rows, cols, md);
      assertSame(got, reference(wmRounded, w0Rounded, rows, cols, md, null), what);
    });
  }

  it('writes D into the scratch buffer when it is large enough', () => {
    const v = toF32(fromF32(values(40, 3, false), 'F16'), 'F16');
    const scratch = new Float32Array(100);
    const got = rowStats16(halves(v, 'F16', 0), 'F16', halves(v, 'F16', 0), 'F16', 4, 10, 'F16', scratch);
    assert.equal(got.D.buffer, scratch.buffer);
    assert.equal(got.D.length, 40);
    assert.ok(got.D.every((d) => d === 0));
  });
});

describe('rowStats32 (decoded values)', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`${dtype} ulps, with and without a per-row factor`, () => {
      const rows = 5, cols = 23;
      const wm = dtype === 'F32' ? values(rows * cols, 4, true) : toF32(fromF32(values(rows * cols, 4, true), dtype), dtype);
      const w0 = values(rows * cols, 5, false);
      assertSame(rowStats32(wm, w0, rows, cols, dtype), reference(wm, w0, rows, cols, dtype, null), `${dtype} c=1`);
      const c = Float64Array.from({ length: rows }, (_, i) => 0.9 + 0.05 * i);
      assertSame(rowStats32(wm, w0, rows, cols, dtype, c), reference(wm, w0, rows, cols, dtype, c), `${dtype} DoRA`);
    });
  }

  it('halfUlpRowNorms agrees with the per-element ulp', () => {
    const rows = 3, cols = 50;
    const w = values(rows * cols, 6, true);
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      assert.deepEqual(Array.from(halfUlpRowNorms(w, rows, cols, dtype)), Array.from(reference(w, w, rows, cols, dtype, null).h), dtype);
    }
  });
});
