/**
 * Householder QR of a tall-skinny matrix, returning only R: σ(X·Y) = σ(R_X·R_Yᵀ) needs the triangular
 * factors alone, and forming Q would cost rows×k memory we do not need.
 */

/**
 * R factor (m×k with m = min(rows, k), upper triangular/trapezoidal, row-major) of a row-major rows×k matrix.
 * Works on an fp64 copy; the input is not modified.
 */
export function householderR(X: ArrayLike<number>, rows: number, k: number): { R: Float64Array; m: number } {
  const A = Float64Array.from(X as ArrayLike<number>);
  const m = Math.min(rows, k);
  const v = new Float64Array(rows);
  for (let j = 0; j < m; j++) {
    // Column j below the diagonal, scaled against overflow.
    let scale = 0;
    for (let i = j; i < rows; i++) scale = Math.max(scale, Math.abs(A[i * k + j]!));
    if (scale === 0) continue;
    let norm2 = 0;
    for (let i = j; i < rows; i++) {
      const x = A[i * k + j]! / scale;
      v[i] = x;
      norm2 += x * x;
    }
    const norm = Math.sqrt(norm2);
    const alpha = v[j]! >= 0 ? -norm : norm;
    v[j] = v[j]! - alpha;
    let vnorm2 = 0;
    for (let i = j; i < rows; i++) vnorm2 += v[i]! * v[i]!;
    if (vnorm2 === 0) continue;
    // Apply H = I − 2vvᵀ/(vᵀv) to columns j..k-1.
    for (let c = j; c < k; c++) {
      let dot = 0;
      for (let i = j; i < rows; i++) dot += v[i]! * A[i * k + c]!;
      const f = (2 * dot) / vnorm2;
      if (f === 0) continue;
      for (let i = j; i < rows; i++) A[i * k + c] = A[i * k + c]! - f * v[i]!;
    }
    A[j * k + j] = alpha * scale;
    for (let i = j + 1; i < rows; i++) A[i * k + j] = 0;
  }
  const R = new Float64Array(m * k);
  for (let i = 0; i < m; i++) for (let c = i; c < k; c++) R[i * k + c] = A[i * k + c]!;
  return { R, m };
}
