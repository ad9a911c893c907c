/**
 * How far a CORRECT merge may drift from the exact forward pass, derived from the storage dtype and the magnitudes
 * involved — never a fixed epsilon, which is either blind in F32 or trips on every BF16 merge.
 *
 * Notation (forward orientation, one output row i, probe p): W' merged row, W0 base row, D_i = W'_i − c_i·W0_i,
 * ΔW_i = s·(P·Q)_i, c_i the DoRA factor m_i/‖W0_i+ΔW_i‖ (1 without DoRA), n inputs, R the rank, u₃₂ = 2⁻²⁴,
 * ε_s / ε_a machine epsilon of the merged-tensor / adapter dtype (F32 2⁻²³, F16 2⁻¹⁰, BF16 2⁻⁷), γ_k = k·u₃₂/(1−k·u₃₂).
 *
 *   E_i = h_i + u₃₂·(‖W'_i‖ + c_i‖W0_i‖) + (max(ε_a, ε_s) + γ_{R+1})·c_i·L_i
 *         h_i = √Σ_j (ulp_s(W'_ij)/2)²          (storage rounding: every stored value is within half an ulp)
 *         L_i = |s|·Σ_k |P_ik|·‖Q_k‖₂ ≥ ‖ΔW_i‖   (lets a merger compute ΔW in the adapter or base dtype — PEFT
 *                                                on GPU / safe_merge round ΔW once more before adding it)
 *   A_i = ‖D_i‖ + 2·c_i·L_i (+ ‖W'_i‖ with DoRA: the fp32 norm's relative error scales the whole row)
 *   tol = factor · max_{p,i} [ K·E_i + Λ·√(n+R)·u₃₂·‖x_p‖·A_i ]
 *
 * Why K·E_i and not Σ_j|x_j||E_ij|: the probes are x ~ N(0, I), so for ANY fixed weight error row e the output error
 * x·e is exactly N(0, ‖e‖²); K = 6 standard deviations (and real rounding errors are uniform within the half-ulp
 * bound, σ ≈ h/√3, so the true margin is ≈ 10σ). The worst-case Σ|x||E| would be ~√n times looser and, in BF16, would
 * hide a doubled α on any adapter with ‖ΔW‖/‖W‖ below a few percent. The second term bounds the fp32 accumulation
 * of the dot products actually evaluated (Higham & Mary's probabilistic bound λ√n·u·Σ|x||w|, with Σ|x||w| ≤ ‖x‖‖w‖);
 * parity evaluates y_merged − y_unmerged as X·Dᵀ − s·(X·Qᵀ)·Pᵀ, so A_i is the size of the DIFFERENCE, not of W0 —
 * the large base term cancels exactly instead of leaving fp32 noise of size u·‖W0‖ behind.
 * For outputs computed the direct way (X·W'ᵀ against X·W0ᵀ + …, as the PyTorch oracle does) use
 * directAccumulated(): A_i = ‖W'_i‖ + c_i‖W0_i‖ + 2·c_i·L_i.
 *
 * Embedding rows are compared element by element (a row lookup has no dot product to average over):
 *   tol = factor · max 2·[ ulp_s(W'_ij)/2 + u₃₂(|W'_ij| + c_j|W0_ij|) + (max(ε_a, ε_s) + γ_{R+1})·c_j|s|·Σ_k|P_ik||Q_kj| ]
 */
import type { Dtype } from '../dtype';

export const U32 = 2 ** -24;
/** Standard deviations allowed for the Gaussian projection of the weight error. */
export const K_SIGMA = 6;
/** Higham–Mary λ for the probabilistic accumulation bound. */
export const LAMBDA = 4;

interface FloatFormat {
  /** Significand bits including the implicit one. */
  t: number;
  /** Exponent of the smallest normal number. */
  emin: number;
}

const FORMATS: Partial<Record<Dtype, FloatFormat>> = {
  F16: { t: 11, emin: -14 },
  BF16: { t: 8, emin: -126 },
  F32: { t: 24, emin: -126 },
};

/** Values are handled as fp32, so anything else (F64, integers) carries fp32 precision. */
function formatOf(dtype: Dtype): FloatFormat {
  return FORMATS[dtype] ?? FORMATS.F32!;
}

/** Machine epsilon (spacing at 1.0) of a storage dtype. */
export function machineEpsilon(dtype: Dtype): number {
  return 2 ** (1 - formatOf(dtype).t);
}

export const gamma = (k: number) => (k * U32) / (1 - k * U32);

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Binary exponent of an fp32 value (subnormals and zero report −126; Inf/NaN 128). */
function f32Exponent(v: number): number {
  f32[0] = v;
  const e = (u32[0]! >>> 23) & 0xff;
  return e === 0 ? -126 : e - 127;
}

/** Unit in the last place of `v` in `dtype` (value spacing at |v|, subnormal spacing near zero). */
export function ulp(v: number, dtype: Dtype): number {
  const { t, emin } = formatOf(dtype);
  const e = f32Exponent(v);
  if (e === 128) return Infinity;
  return 2 ** (Math.max(e, emin) - (t - 1));
}

/** ulp(v)/2 in `dtype` for the fp32 value with bit pattern `bits` (Infinity for Inf/NaN): an exact power of two. */
export function halfUlpOfF32Bits(bits: number, dtype: Dtype): number {
  const { t, emin } = formatOf(dtype);
  const eb = (bits >>> 23) & 0xff;
  if (eb === 0xff) return Infinity;
  return 2 ** (Math.max(eb === 0 ? -126 : eb - 127, emin) - t);
}

/** h_i = √Σ_j (ulp(W_ij)/2)² per row: the largest ‖rounding error‖₂ a stored row can carry. */
export function halfUlpRowNorms(w: Float32Array, rows: number, cols: number, dtype: Dtype): Float64Array {
  // (ulp/2)² depends on the exponent byte only: a 256-entry table instead of a power per element.
  const sq = new Float64Array(256);
  for (let e = 0; e < 256; e++) sq[e] = halfUlpOfF32Bits(e << 23, dtype) ** 2;
  const h = new Float64Array(rows);
  const view = new Uint32Array(w.buffer, w.byteOffset, w.length);
  for (let i = 0; i < rows; i++) {
    let acc = 0;
    const end = (i + 1) * cols;
    for (let k = i * cols; k < end; k++) acc += sq[(view[k]! >>> 23) & 0xff]!;
    h[i] = Math.sqrt(acc);
  }
  return h;
}

/** Round fp32 values to the nearest value of `dtype` (ties to even), in place; F32 and others are left alone. */
export function roundToDtype(values: Float32Array, dtype: Dtype): Float32Array {
  if (dtype !== 'F16' && dtype !== 'BF16') return values;
  const { t, emin } = formatOf(dtype);
  const max = dtype === 'F16' ? 65504 : 3.3895313892515355e38;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v) || v === 0) continue;
    const a = Math.abs(v);
    const q = 2 ** (Math.max(f32Exponent(a), emin) - (t - 1));
    const x = a / q;
    let r = Math.floor(x);
    const frac = x - r;
    if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r += 1;
    let out = r * q;
    // Past the largest finite value by half an ulp or more rounds to infinity.
    if (out > max) out = Infinity;
    values[i] = v < 0 ? -out : out;
  }
  return values;
}

/** ‖row i‖₂ of a rows × cols matrix (fp64 accumulation). */
export function rowNorms(w: Float32Array, rows: number, cols: number, rowScale?: Float64Array | Float32Array): Float64Array {
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let acc = 0;
    const o = i * cols;
    for (let j = 0; j < cols; j++) acc += w[o + j]! * w[o + j]!;
    out[i] = Math.sqrt(acc) * Math.abs(rowScale ? rowScale[i]! : 1);
  }
  return out;
}

/** L_i = |s|·Σ_k |P_ik|·‖Q_k‖₂ for ΔW = s·P·Q (P rows × R, Q R × cols): bounds ‖ΔW_i‖ and ‖(|s||P||Q|)_i‖ without forming ΔW. */
export function lowRankRowBound(P: Float32Array, Q: Float32Array, rows: number, R: number, cols: number, scale: number): Float64Array {
  const qn = rowNorms(Q, R, cols);
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let acc = 0;
    for (let k = 0; k < R; k++) acc += Math.abs(P[i * R + k]!) * qn[k]!;
    out[i] = acc * Math.abs(scale);
  }
  return out;
}

export interface RowErrorInputs {
  /** Merged weight, forward orientation (rows = outputs); only read for h_i when `halfUlp` is not given. */
  merged?: Float32Array;
  mergedDtype: Dtype;
  /** Row norms ‖W0_i‖ of the base (forward orientation). */
  baseNorms: Float64Array;
  /** Row norms ‖W'_i‖. */
  mergedNorms: Float64Array;
  /** L_i (lowRankRowBound), already including |s|. */
  lowRank: Float64Array;
  adapterDtype: Dtype;
  rank: number;
  rows: number;
  cols: number;
  /** DoRA factor per row (1 when absent). */
  rowFactor?: Float64Array | null;
  /** h_i when already computed (rowStats.ts); otherwise derived from `merged`. */
  halfUlp?: Float64Array;
}

/** E_i: per-row bound on ‖stored W'_i − exact W'_i‖₂ that a correct merge may carry (see the header). */
export function weightErrorRows(inp: RowErrorInputs): Float64Array {
  const h = inp.halfUlp ?? (inp.merged ? halfUlpRowNorms(inp.merged, inp.rows, inp.cols, inp.mergedDtype) : null);
  if (!h) throw new TypeError('weightErrorRows needs the merged weight or its half-ulp row norms');
  const eps = Math.max(machineEpsilon(inp.adapterDtype), machineEpsilon(inp.mergedDtype)) + gamma(inp.rank + 1);
  const e = new Float64Array(inp.rows);
  for (let i = 0; i < inp.rows; i++) {
    const c = Math.abs(inp.rowFactor ? inp.rowFactor[i]! : 1);
    e[i] = h[i]! + U32 * (inp.mergedNorms[i]! + c * inp.baseNorms[i]!) + eps * c * inp.lowRank[i]!;
  }
  return e;
}

/** A_i for the direct evaluation X·W'ᵀ vs X·W0ᵀ + s(XQᵀ)Pᵀ (PyTorch's way; used against the oracle probes). */
export function directAccumulated(mergedNorms: Float64Array, baseNorms: Float64Array, lowRank: Float64Array, rowFactor?: Float64Array | null): Float64Array {
  const a = new Float64Array(mergedNorms.length);
  for (let i = 0; i < a.length; i++) {
    const c = Math.abs(rowFactor ? rowFactor[i]! : 1);
    a[i] = mergedNorms[i]! + c * baseNorms[i]! + 2 * c * lowRank[i]!;
  }
  return a;
}

/** A_i for the difference evaluation X·Dᵀ − s(XQᵀ)Pᵀ that parity uses. */
export function differenceAccumulated(diffNorms: Float64Array, lowRank: Float64Array, rowFactor?: Float64Array | null, mergedNorms?: Float64Array | null): Float64Array {
  const a = new Float64Array(diffNorms.length);
  for (let i = 0; i < a.length; i++) {
    const c = Math.abs(rowFactor ? rowFactor[i]! : 1);
    a[i] = diffNorms[i]! + 2 * c * lowRank[i]! + (mergedNorms ? mergedNorms[i]! : 0);
  }
  return a;
}

/** The scalar tolerance: factor · max_{p,i} [K·E_i + Λ·√(n+R)·u₃₂·‖x_p‖·A_i] (separable, so ‖x_p‖ enters as its max). */
export function forwardTolerance(weightError: Float64Array, accumulated: Float64Array, maxProbeNorm: number, inner: number, rank: number, factor: number): number {
  const acc = LAMBDA * Math.sqrt(inner + rank) * U32 * maxProbeNorm;
  let tol = 0;
  for (let i = 0; i < weightError.length; i++) {
    const t = K_SIGMA * weightError[i]! + acc * accumulated[i]!;
    // Rows holding NaN/Inf fail on their own (their difference is not finite); they must not void the others' bound.
    if (t > tol && Number.isFinite(t)) tol = t;
  }
  return factor * tol;
}

/** Euclidean norms of the p probe rows. */
export function probeNorms(x: Float32Array, p: number, n: number): Float64Array {
  return rowNorms(x, p, n);
}

/** Per-element tolerance of a row-lookup (embedding) comparison; see the header. */
export function elementTolerance(merged: number, base: number, absLowRank: number, mergedDtype: Dtype, adapterDtype: Dtype, rank: number, colFactor: number): number {
  const eps = Math.max(machineEpsilon(adapterDtype), machineEpsilon(mergedDtype)) + gamma(rank + 1);
  const c = Math.abs(colFactor);
  return 2 * (ulp(merged, mergedDtype) / 2 + U32 * (Math.abs(merged) + c * Math.abs(base)) + eps * c * absLowRank);
}
