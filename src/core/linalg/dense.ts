/**
 * Small dense fp64 helpers for r×r-sized work. Inputs are row-major; the big factors stay fp32 and are only
 * read, never expanded into rows×cols products.
 */
export type Vec = Float64Array;

/** XᵀX (k×k) of a row-major rows×k matrix. */
export function gramCols(X: ArrayLike<number>, rows: number, k: number): Float64Array {
  const G = new Float64Array(k * k);
  for (let i = 0; i < rows; i++) {
    const o = i * k;
    for (let a = 0; a < k; a++) {
      const xa = X[o + a]!;
      if (xa === 0) continue;
      for (let b = a; b < k; b++) G[a * k + b] += xa * X[o + b]!;
    }
  }
  for (let a = 0; a < k; a++) for (let b = 0; b < a; b++) G[a * k + b] = G[b * k + a]!;
  return G;
}

/** YYᵀ (k×k) of a row-major k×cols matrix. */
export function gramRows(Y: ArrayLike<number>, k: number, cols: number): Float64Array {
  const G = new Float64Array(k * k);
  for (let a = 0; a < k; a++) {
    for (let b = a; b < k; b++) {
      let s = 0;
      const oa = a * cols, ob = b * cols;
      for (let j = 0; j < cols; j++) s += Y[oa + j]! * Y[ob + j]!;
      G[a * k + b] = s;
      G[b * k + a] = s;
    }
  }
  return G;
}

/** C = A (m×n) · B (n×p), all row-major fp64. */
export function matmul(A: ArrayLike<number>, B: ArrayLike<number>, m: number, n: number, p: number): Float64Array {
  const C = new Float64Array(m * p);
  for (let i = 0; i < m; i++) {
    for (let t = 0; t < n; t++) {
      const a = A[i * n + t]!;
      if (a === 0) continue;
      const ob = t * p, oc = i * p;
      for (let j = 0; j < p; j++) C[oc + j] += a * B[ob + j]!;
    }
  }
  return C;
}

export function transpose64(A: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const T = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) T[j * rows + i] = A[i * cols + j]!;
  return T;
}

/** trace(P·Q) for square n×n P, Q without forming the product. */
export function traceOfProduct(P: ArrayLike<number>, Q: ArrayLike<number>, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) s += P[i * n + j]! * Q[j * n + i]!;
  return s;
}
