import test from 'node:test';
import assert from 'node:assert/strict';
import { lowRankStats, jacobiSvd, symmetricEigen, householderR, matmul, transpose64 } from '../../../src/core/linalg/index';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}
const randn = (n: number, r: () => number) => Float32Array.from({ length: n }, () => r() * 2);

/** Orthonormal columns (rows×k) by modified Gram–Schmidt — an oracle independent of the Householder code. */
function orthonormal(rows: number, k: number, r: () => number): Float64Array {
  const Q = new Float64Array(rows * k);
  for (let j = 0; j < k; j++) {
    const v = Array.from({ length: rows }, () => r());
    for (let p = 0; p < j; p++) {
      let d = 0;
      for (let i = 0; i < rows; i++) d += v[i]! * Q[i * k + p]!;
      for (let i = 0; i < rows; i++) v[i] -= d * Q[i * k + p]!;
    }
    const n = Math.hypot(...v);
    for (let i = 0; i < rows; i++) Q[i * k + j] = v[i]! / n;
  }
  return Q;
}

function denseNorm(X: ArrayLike<number>, Y: ArrayLike<number>, rows: number, cols: number, rank: number): number {
  const D = matmul(X, Y, rows, rank, cols);
  return Math.sqrt(D.reduce((s, x) => s + x * x, 0));
}

test('‖XY‖ and Σσ² match a dense computation (random, several shapes)', () => {
  const r = rng(7);
  for (const [rows, cols, rank] of [[12, 9, 3], [5, 17, 4], [30, 30, 8], [4, 3, 6]] as const) {
    const X = randn(rows * rank, r), Y = randn(rank * cols, r);
    const st = lowRankStats(X, Y, rows, cols, rank, 2.5);
    const dn = denseNorm(X, Y, rows, cols, rank) * 2.5;
    assert.ok(Math.abs(st.normDelta - dn) <= 1e-9 * dn, `${st.normDelta} vs ${dn}`);
    const s2 = st.singularValues.reduce((s, x) => s + x * x, 0);
    assert.ok(Math.abs(Math.sqrt(s2) - dn) <= 1e-9 * dn);
    assert.ok(st.singularValues.length <= Math.min(rank, rows, cols));
    // Dense SVD of the full product agrees value by value.
    const dense = jacobiSvd(matmul(X, Y, rows, rank, cols), rows, cols).s;
    st.singularValues.forEach((s, i) => assert.ok(Math.abs(s - 2.5 * dense[i]!) <= 1e-9 * dn, `σ${i}`));
  }
});

test('known singular values: X = U·diag(s), Y = Vᵀ', () => {
  const r = rng(11);
  const rows = 20, cols = 15, rank = 4;
  const s = [5, 3, 0.5, 1e-3];
  const U = orthonormal(rows, rank, r), V = orthonormal(cols, rank, r);
  const X = new Float64Array(rows * rank);
  for (let i = 0; i < rows; i++) for (let j = 0; j < rank; j++) X[i * rank + j] = U[i * rank + j]! * s[j]!;
  const Y = transpose64(V, cols, rank);
  const st = lowRankStats(X, Y, rows, cols, rank);
  s.forEach((x, i) => assert.ok(Math.abs(st.singularValues[i]! - x) < 1e-12, `σ${i} ${st.singularValues[i]} vs ${x}`));
  const p = s.map((x) => (x * x) / s.reduce((a, b) => a + b * b, 0));
  const er = Math.exp(-p.reduce((h, q) => h + q * Math.log(q), 0));
  assert.ok(Math.abs(st.effectiveRank - er) < 1e-12);
});

test('rank-deficient factors: trailing singular values vanish, zero update has effective rank 0', () => {
  const r = rng(3);
  const rows = 10, cols = 8, rank = 4;
  const X = randn(rows * rank, r);
  // Column 3 of X = column 0 + column 1 → rank(X) = 3.
  for (let i = 0; i < rows; i++) X[i * rank + 3] = X[i * rank]! + X[i * rank + 1]!;
  const Y = randn(rank * cols, r);
  const st = lowRankStats(X, Y, rows, cols, rank);
  const dn = denseNorm(X, Y, rows, cols, rank);
  assert.ok(Math.abs(st.normDelta - dn) < 1e-9 * dn);
  assert.ok(st.singularValues[3]! < 1e-5 * st.singularValues[0]!);
  assert.ok(st.effectiveRank < 3 + 1e-6);
  const z = lowRankStats(new Float32Array(rows * rank), Y, rows, cols, rank);
  assert.equal(z.normDelta, 0);
  assert.equal(z.effectiveRank, 0);
  assert.ok(z.singularValues.every((x) => x === 0));
});

test('householderR: RᵀR = XᵀX', () => {
  const r = rng(5);
  const rows = 9, k = 4;
  const X = randn(rows * k, r);
  const { R, m } = householderR(X, rows, k);
  const RtR = matmul(transpose64(R, m, k), R, k, m, k);
  const XtX = matmul(transpose64(X, rows, k), X, k, rows, k);
  RtR.forEach((x, i) => assert.ok(Math.abs(x - XtX[i]!) < 1e-9));
  for (let i = 0; i < m; i++) for (let j = 0; j < i; j++) assert.equal(R[i * k + j], 0);
});

test('symmetricEigen: A·v = λ·v, descending', () => {
  const r = rng(9);
  const n = 6;
  const B = randn(n * n, r);
  const A = matmul(transpose64(B, n, n), B, n, n, n);
  const { values, vectors } = symmetricEigen(A, n);
  for (let j = 0; j < n; j++) {
    if (j) assert.ok(values[j - 1]! >= values[j]!);
    for (let i = 0; i < n; i++) {
      let av = 0;
      for (let k = 0; k < n; k++) av += A[i * n + k]! * vectors[k * n + j]!;
      assert.ok(Math.abs(av - values[j]! * vectors[i * n + j]!) < 1e-9);
    }
  }
});
