/**
 * Statistics of ΔW = scale·X·Y (rows×rank times rank×cols) computed from rank-sized products only, so a
 * 4096×4096 layer costs O((rows+cols)·rank²) instead of materialising 16M elements.
 */
import { gramCols, gramRows, matmul, traceOfProduct, transpose64 } from './dense';
import { householderR } from './qr';
import { jacobiSvd } from './jacobi';

export interface LowRankStats {
  /** ‖scale·X·Y‖_F */
  normDelta: number;
  /** Singular values of scale·X·Y, descending, length ≤ rank. */
  singularValues: number[];
  /** exp(entropy of σ²/Σσ²); 0 for a zero update. */
  effectiveRank: number;
}

/** ‖X·Y‖_F² = trace((XᵀX)(YYᵀ)). */
export function lowRankFrobenius2(X: ArrayLike<number>, Y: ArrayLike<number>, rows: number, cols: number, rank: number): number {
  return Math.max(0, traceOfProduct(gramCols(X, rows, rank), gramRows(Y, rank, cols), rank));
}

/** σ(X·Y) = σ(R_X·R_Yᵀ) with X = Q_X·R_X and Yᵀ = Q_Y·R_Y. */
export function lowRankSingularValues(X: ArrayLike<number>, Y: ArrayLike<number>, rows: number, cols: number, rank: number): number[] {
  if (rank === 0 || rows === 0 || cols === 0) return [];
  const { R: RX, m: mx } = householderR(X, rows, rank);
  const { R: RY, m: my } = householderR(transpose64(Y, rank, cols), cols, rank);
  const core = matmul(RX, transpose64(RY, my, rank), mx, rank, my);
  return Array.from(jacobiSvd(core, mx, my).s);
}

export function effectiveRankOf(sv: readonly number[]): number {
  const total = sv.reduce((s, x) => s + x * x, 0);
  if (!(total > 0) || !Number.isFinite(total)) return 0;
  let h = 0;
  for (const x of sv) {
    const p = (x * x) / total;
    if (p > 0) h -= p * Math.log(p);
  }
  return Math.exp(h);
}

export function lowRankStats(
  X: ArrayLike<number>, Y: ArrayLike<number>, rows: number, cols: number, rank: number, scale = 1,
): LowRankStats {
  const a = Math.abs(scale);
  const sv = lowRankSingularValues(X, Y, rows, cols, rank).map((s) => s * a);
  return {
    normDelta: a * Math.sqrt(lowRankFrobenius2(X, Y, rows, cols, rank)),
    singularValues: sv,
    effectiveRank: effectiveRankOf(sv),
  };
}
