/** Jacobi methods for the small (r×r) eigen/singular value problems; slow per element but exact to fp64 rounding. */

export interface SymEig {
  /** Descending. */
  values: Float64Array;
  /** Column j (row-major n×n, element [i*n+j]) is the eigenvector of values[j]. */
  vectors: Float64Array;
}

/** Cyclic Jacobi eigen-decomposition of a symmetric n×n matrix (row-major; only symmetric input is meaningful). */
export function symmetricEigen(S: ArrayLike<number>, n: number, maxSweeps = 100): SymEig {
  const A = Float64Array.from(S as ArrayLike<number>);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0, total = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      const x = A[i * n + j]! * A[i * n + j]!;
      total += x;
      if (i !== j) off += x;
    }
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q]!;
        if (apq === 0) continue;
        const app = A[p * n + p]!, aqq = A[q * n + q]!;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        rotateColumns(A, n, n, p, q, c, s);
        for (let k = 0; k < n; k++) {
          const apk = A[p * n + k]!, aqk = A[q * n + k]!;
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        rotateColumns(V, n, n, p, q, c, s);
      }
    }
  }
  const order = [...Array(n).keys()].sort((a, b) => A[b * n + b]! - A[a * n + a]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = A[src * n + src]!;
    for (let i = 0; i < n; i++) vectors[i * n + dst] = V[i * n + src]!;
  });
  return { values, vectors };
}

export interface Svd {
  /** Descending, length min(m, n). */
  s: Float64Array;
  /** m×k left singular vectors (row-major, column j ↔ s[j]), k = min(m, n). */
  u: Float64Array;
  /** n×k right singular vectors (row-major). */
  v: Float64Array;
  k: number;
}

/**
 * One-sided (Hestenes) Jacobi SVD of a small m×n matrix: orthogonalises columns by plane rotations, which keeps
 * tiny singular values accurate (unlike eigenvalues of MᵀM). Wide inputs are handled through the transpose.
 */
export function jacobiSvd(M: ArrayLike<number>, m: number, n: number, maxSweeps = 60): Svd {
  if (n > m) {
    const T = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) T[j * m + i] = M[i * n + j]!;
    const r = jacobiSvd(T, n, m, maxSweeps);
    return { s: r.s, u: r.v, v: r.u, k: r.k };
  }
  const U = Float64Array.from(M as ArrayLike<number>); // m×n, columns rotated in place
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  const eps = 1e-15;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        let alpha = 0, beta = 0, gamma = 0;
        for (let i = 0; i < m; i++) {
          const up = U[i * n + p]!, uq = U[i * n + q]!;
          alpha += up * up; beta += uq * uq; gamma += up * uq;
        }
        if (gamma === 0 || Math.abs(gamma) <= eps * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t), s = c * t;
        rotateColumns(U, m, n, p, q, c, s);
        rotateColumns(V, n, n, p, q, c, s);
      }
    }
    if (!rotated) break;
  }
  const norms = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let s2 = 0;
    for (let i = 0; i < m; i++) s2 += U[i * n + j]! * U[i * n + j]!;
    norms[j] = Math.sqrt(s2);
  }
  const order = [...Array(n).keys()].sort((a, b) => norms[b]! - norms[a]!);
  const k = n;
  const s = new Float64Array(k), u = new Float64Array(m * k), v = new Float64Array(n * k);
  order.forEach((src, dst) => {
    const sv = norms[src]!;
    s[dst] = sv;
    for (let i = 0; i < m; i++) u[i * k + dst] = sv > 0 ? U[i * n + src]! / sv : 0;
    for (let i = 0; i < n; i++) v[i * k + dst] = V[i * n + src]!;
  });
  return { s, u, v, k };
}

/** Applies the Givens rotation [c s; −s c] to columns p and q of a row-major rows×cols matrix, in place. */
function rotateColumns(M: Float64Array, rows: number, cols: number, p: number, q: number, c: number, s: number): void {
  for (let i = 0; i < rows; i++) {
    const mp = M[i * cols + p]!, mq = M[i * cols + q]!;
    M[i * cols + p] = c * mp - s * mq;
    M[i * cols + q] = s * mp + c * mq;
  }
}
