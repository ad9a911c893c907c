/**
 * Plain-TypeScript fp32 kernels, register-blocked: 4 rows × 4 ranks (low-rank update) and 4×4 outputs (matmulNT)
 * per inner loop keep sixteen coefficients or accumulators in registers, which is ~5× faster than the naive loops.
 * Sums run in float64 and are rounded to fp32 once per stored value: at least as accurate as fp32 accumulation,
 * and the oracle tolerances (1e-6 F32, 1 ulp F16/BF16) do not depend on summation order.
 */

/**
 * Adds Σ_k scale·X[i0+a, k]·Y[k, :] to acc row a (a < 4) for the rows that exist (`rows` ≤ 4).
 * Missing rows get zero coefficients; missing ranks read a zero row (so an Inf in Y cannot turn into 0·Inf = NaN).
 */
export function accumulateRows(
  acc: readonly [Float64Array, Float64Array, Float64Array, Float64Array],
  n: number,
  X: Float32Array,
  Y: Float32Array,
  R: number,
  scale: number,
  i0: number,
  rows: number,
  zeroRow: Float32Array,
): void {
  const [s0, s1, s2, s3] = acc;
  const coef = (a: number, k: number) => (a < rows && k < R ? scale * X[(i0 + a) * R + k]! : 0);
  const row = (k: number) => (k < R ? Y.subarray(k * n, k * n + n) : zeroRow);
  for (let k0 = 0; k0 < R; k0 += 4) {
    const c00 = coef(0, k0), c01 = coef(0, k0 + 1), c02 = coef(0, k0 + 2), c03 = coef(0, k0 + 3);
    const c10 = coef(1, k0), c11 = coef(1, k0 + 1), c12 = coef(1, k0 + 2), c13 = coef(1, k0 + 3);
    const c20 = coef(2, k0), c21 = coef(2, k0 + 1), c22 = coef(2, k0 + 2), c23 = coef(2, k0 + 3);
    const c30 = coef(3, k0), c31 = coef(3, k0 + 1), c32 = coef(3, k0 + 2), c33 = coef(3, k0 + 3);
    const y0 = row(k0), y1 = row(k0 + 1), y2 = row(k0 + 2), y3 = row(k0 + 3);
    for (let j = 0; j < n; j++) {
      const a = y0[j]!, b = y1[j]!, c = y2[j]!, d = y3[j]!;
      s0[j] += c00 * a + c01 * b + c02 * c + c03 * d;
      s1[j] += c10 * a + c11 * b + c12 * c + c13 * d;
      s2[j] += c20 * a + c21 * b + c22 * c + c23 * d;
      s3[j] += c30 * a + c31 * b + c32 * c + c33 * d;
    }
  }
}

/** Y (p×m) = X (p×n) · Wᵀ, W (m×n). Missing rows of a 4×4 block re-read the last row and are not stored. */
export function matmulNTKernel(x: Float32Array, p: number, n: number, w: Float32Array, m: number): Float32Array {
  const y = new Float32Array(p * m);
  const xr = (i: number) => x.subarray(Math.min(i, p - 1) * n, Math.min(i, p - 1) * n + n);
  const wr = (k: number) => w.subarray(Math.min(k, m - 1) * n, Math.min(k, m - 1) * n + n);
  for (let i0 = 0; i0 < p; i0 += 4) {
    const x0 = xr(i0), x1 = xr(i0 + 1), x2 = xr(i0 + 2), x3 = xr(i0 + 3);
    for (let k0 = 0; k0 < m; k0 += 4) {
      const w0 = wr(k0), w1 = wr(k0 + 1), w2 = wr(k0 + 2), w3 = wr(k0 + 3);
      let a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
      let a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
      for (let j = 0; j < n; j++) {
        const u0 = x0[j]!, u1 = x1[j]!, u2 = x2[j]!, u3 = x3[j]!;
        const v0 = w0[j]!, v1 = w1[j]!, v2 = w2[j]!, v3 = w3[j]!;
        a00 += u0 * v0; a01 += u0 * v1; a02 += u0 * v2; a03 += u0 * v3;
        a10 += u1 * v0; a11 += u1 * v1; a12 += u1 * v2; a13 += u1 * v3;
        a20 += u2 * v0; a21 += u2 * v1; a22 += u2 * v2; a23 += u2 * v3;
        a30 += u3 * v0; a31 += u3 * v1; a32 += u3 * v2; a33 += u3 * v3;
      }
      const acc = [a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33];
      for (let a = 0; a < 4 && i0 + a < p; a++) {
        for (let b = 0; b < 4 && k0 + b < m; b++) y[(i0 + a) * m + k0 + b] = acc[a * 4 + b]!;
      }
    }
  }
  return y;
}
