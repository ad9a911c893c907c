/**
 * `lora-lens diff A B`: how two adapters' updates relate, module by module, from rank-sized products only — the
 * rows × cols matrices ΔW are never formed:
 *   ⟨X_aY_a, X_bY_b⟩_F = trace((X_aᵀX_b)(Y_bY_aᵀ)),   ‖XY‖² = trace((XᵀX)(YYᵀ)),
 *   subspace similarity φ = ‖U_aᵏᵀU_bᵏ‖_F² / k (LoRA paper §7) with U the output-side singular vectors, from a thin
 *   QR of the output factor and the SVD of an r × r core.
 * Modules are matched by their `module` name as the loaders report it; kohya vs PEFT naming of the same model is not
 * reconciled (give both adapters in one naming, or pass --base so kohya names map to base keys).
 */
import type { Adapter, AdapterLayer, AdapterOverrides } from '../adapter/types';
import { throwIfCancelled } from '../cancel';
import type { Checkpoint } from '../checkpoint';
import { openCheckpoint } from '../formats/open';
import { gramCols, gramRows, householderR, jacobiSvd, transpose64 } from '../linalg';
import type { AdapterSpec, DiffOptions } from '../options';
import type { DiffModule, DiffReport } from '../reports';
import { storedFactors } from './delta';
import { closeAll, overridesOf } from './sources';
import { loadAdapter } from '../adapter/load';
import { isLoraLensError } from '../errors';

/** An update as X·Y (storage orientation) with the output axis made explicit. */
export interface Factored {
  X: Float32Array;
  Y: Float32Array;
  rows: number;
  cols: number;
  rank: number;
  /** Which storage axis holds the layer's outputs ('cols' for fan_in_fan_out and embeddings). */
  outputAxis: 'rows' | 'cols';
}

/** ⟨X_aY_a, X_bY_b⟩_F = trace((X_aᵀX_b)(Y_bY_aᵀ)) — O((rows+cols)·r_a·r_b). */
export function lowRankInner(a: Factored, b: Factored): number {
  const ra = a.rank, rb = b.rank;
  const XX = new Float64Array(ra * rb); // X_aᵀX_b
  for (let i = 0; i < a.rows; i++) {
    for (let p = 0; p < ra; p++) {
      const x = a.X[i * ra + p]!;
      if (x === 0) continue;
      for (let q = 0; q < rb; q++) XX[p * rb + q] += x * b.X[i * rb + q]!;
    }
  }
  const YY = new Float64Array(rb * ra); // Y_bY_aᵀ
  for (let q = 0; q < rb; q++) {
    for (let p = 0; p < ra; p++) {
      let s = 0;
      for (let j = 0; j < a.cols; j++) s += b.Y[q * b.cols + j]! * a.Y[p * a.cols + j]!;
      YY[q * ra + p] = s;
    }
  }
  let t = 0;
  for (let p = 0; p < ra; p++) for (let q = 0; q < rb; q++) t += XX[p * rb + q]! * YY[q * ra + p]!;
  return t;
}

export function lowRankNorm(f: Factored): number {
  const G = gramCols(f.X, f.rows, f.rank);
  const H = gramRows(f.Y, f.rank, f.cols);
  let t = 0;
  for (let p = 0; p < f.rank; p++) for (let q = 0; q < f.rank; q++) t += G[p * f.rank + q]! * H[q * f.rank + p]!;
  return Math.sqrt(Math.max(0, t));
}

/**
 * Orthonormal basis (len × k, fp64, row-major) of the top-k output-side singular directions of X·Y.
 * Output side F (len × R), other side G (R × other): F = Q_F·R_F (modified Gram–Schmidt, reorthogonalised), Gᵀ = Q_G·R_G,
 * so F·G = Q_F·(R_F·R_Gᵀ)·Q_Gᵀ and the left singular vectors are Q_F·U_core.
 */
export function outputSingularBasis(f: Factored): { basis: Float64Array; len: number; k: number; sv: Float64Array } {
  const R = f.rank;
  // Output factor F (len × R) and the other factor's transpose Gt (other × R).
  const F = f.outputAxis === 'rows' ? Float64Array.from(f.X) : transpose64(f.Y, R, f.cols);
  const len = f.outputAxis === 'rows' ? f.rows : f.cols;
  const Gt = f.outputAxis === 'rows' ? transpose64(f.Y, R, f.cols) : Float64Array.from(f.X);
  const other = f.outputAxis === 'rows' ? f.cols : f.rows;
  const { Q, Rf } = thinQr(F, len, R);
  const { R: Rg, m: mg } = householderR(Gt, other, R);
  // core = R_F (R × R) · R_Gᵀ (R × mg)
  const core = new Float64Array(R * mg);
  for (let i = 0; i < R; i++) {
    for (let j = 0; j < mg; j++) {
      let s = 0;
      for (let t = 0; t < R; t++) s += Rf[i * R + t]! * Rg[j * R + t]!;
      core[i * mg + j] = s;
    }
  }
  if (R === 0 || mg === 0) return { basis: new Float64Array(0), len, k: 0, sv: new Float64Array(0) };
  const svd = jacobiSvd(core, R, mg);
  const top = svd.s[0] ?? 0;
  // Directions with σ ≈ 0 are arbitrary; leave them out of the subspace.
  let k = 0;
  while (k < svd.k && svd.s[k]! > top * 1e-6 && svd.s[k]! > 0) k++;
  const basis = new Float64Array(len * k);
  for (let i = 0; i < len; i++) {
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let t = 0; t < R; t++) s += Q[i * R + t]! * svd.u[t * svd.k + c]!;
      basis[i * k + c] = s;
    }
  }
  return { basis, len, k, sv: svd.s.subarray(0, k) };
}

/** Thin QR by modified Gram–Schmidt with one reorthogonalisation (len × R → Q len × R, R R × R). */
function thinQr(A: Float64Array, len: number, R: number): { Q: Float64Array; Rf: Float64Array } {
  const Q = Float64Array.from(A);
  const Rf = new Float64Array(R * R);
  const colNorm = (c: number) => {
    let s = 0;
    for (let i = 0; i < len; i++) s += Q[i * R + c]! ** 2;
    return Math.sqrt(s);
  };
  for (let c = 0; c < R; c++) {
    const before = colNorm(c);
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < c; p++) {
        let d = 0;
        for (let i = 0; i < len; i++) d += Q[i * R + p]! * Q[i * R + c]!;
        Rf[p * R + c] += d;
        for (let i = 0; i < len; i++) Q[i * R + c] = Q[i * R + c]! - d * Q[i * R + p]!;
      }
    }
    const n = colNorm(c);
    // A column inside the span of the previous ones adds no direction.
    if (n <= before * 1e-12 || n === 0) {
      for (let i = 0; i < len; i++) Q[i * R + c] = 0;
      continue;
    }
    Rf[c * R + c] = n;
    for (let i = 0; i < len; i++) Q[i * R + c] = Q[i * R + c]! / n;
  }
  return { Q, Rf };
}

/** φ = ‖U_aᵏᵀ U_bᵏ‖_F² / k with k = min(k_a, k_b, kMax); null when either update is zero. */
export function subspaceSimilarity(a: Factored, b: Factored, kMax = Infinity): number | null {
  const A = outputSingularBasis(a);
  const B = outputSingularBasis(b);
  if (A.len !== B.len) return null;
  const k = Math.min(A.k, B.k, kMax);
  if (k === 0) return null;
  let s = 0;
  for (let p = 0; p < k; p++) {
    for (let q = 0; q < k; q++) {
      let d = 0;
      for (let i = 0; i < A.len; i++) d += A.basis[i * A.k + p]! * B.basis[i * B.k + q]!;
      s += d * d;
    }
  }
  return Math.min(1, s / k);
}

const outputAxisOf = (layer: AdapterLayer): 'rows' | 'cols' => (layer.kind === 'embedding' || layer.fanInFanOut ? 'cols' : 'rows');

async function factorsOf(adapter: Adapter, layer: AdapterLayer): Promise<Factored> {
  const [A, B] = await Promise.all([adapter.checkpoint.readF32(layer.aKey), adapter.checkpoint.readF32(layer.bKey)]);
  const f = storedFactors(layer, A, B);
  return { X: f.X, Y: f.Y, rows: f.rows, cols: f.cols, rank: f.rank, outputAxis: outputAxisOf(layer) };
}

async function open(spec: AdapterSpec, base: Checkpoint | null): Promise<Adapter> {
  const o: AdapterOverrides = base ? overridesOf(spec, base) : {};
  if (!base) {
    if (spec.config !== undefined) o.configPath = spec.config;
    if (spec.alpha !== undefined) o.alpha = spec.alpha;
    if (spec.enableLora !== undefined) o.enableLora = spec.enableLora;
    if (spec.fanInFanOut !== undefined) o.fanInFanOut = spec.fanInFanOut;
  }
  try {
    return await loadAdapter(spec.path, o);
  } catch (e) {
    throw isLoraLensError(e) ? e.withFile(spec.path) : e;
  }
}

export async function diff(opts: DiffOptions): Promise<DiffReport> {
  const base = opts.base ? await openCheckpoint(opts.base) : null;
  const opened: Adapter[] = [];
  try {
    const a = await open(opts.a, base);
    opened.push(a);
    const b = await open(opts.b, base);
    opened.push(b);
    const byName = (ad: Adapter) => new Map(ad.layers.map((l) => [l.module, l] as const));
    const la = byName(a);
    const lb = byName(b);
    const names = [...new Set([...la.keys(), ...lb.keys()])].sort();
    const modules: DiffModule[] = [];
    for (const name of names) {
      throwIfCancelled(opts.cancel);
      const x = la.get(name) ?? null;
      const y = lb.get(name) ?? null;
      modules.push(await diffModule(name, x ? { adapter: a, layer: x } : null, y ? { adapter: b, layer: y } : null));
    }
    return { a: opts.a.path, b: opts.b.path, modules, summary: summarize(modules) };
  } finally {
    await closeAll([base, ...opened.map((x) => x.checkpoint)]);
  }
}

interface Side {
  adapter: Adapter;
  layer: AdapterLayer;
}

async function diffModule(module: string, a: Side | null, b: Side | null): Promise<DiffModule> {
  const row: DiffModule = {
    module,
    status: a && b ? 'both' : a ? 'only-a' : 'only-b',
    rA: a?.layer.r ?? null, rB: b?.layer.r ?? null,
    alphaA: a?.layer.alpha ?? null, alphaB: b?.layer.alpha ?? null,
    scalingA: a?.layer.scaling ?? null, scalingB: b?.layer.scaling ?? null,
    normA: null, normB: null, cosine: null, subspaceSimilarity: null, shapeMismatch: false,
  };
  const fa = a ? await factorsOf(a.adapter, a.layer) : null;
  const fb = b ? await factorsOf(b.adapter, b.layer) : null;
  const na = fa ? lowRankNorm(fa) : 0;
  const nb = fb ? lowRankNorm(fb) : 0;
  if (fa && a!.layer.scaling !== null) row.normA = Math.abs(a!.layer.scaling) * na;
  if (fb && b!.layer.scaling !== null) row.normB = Math.abs(b!.layer.scaling) * nb;
  if (!fa || !fb) return row;
  if (fa.rows !== fb.rows || fa.cols !== fb.cols) {
    row.shapeMismatch = true;
    return row;
  }
  // Unknown α: the scale is positive in practice, so the sign of the cosine still holds.
  const sign = Math.sign(a!.layer.scaling ?? 1) * Math.sign(b!.layer.scaling ?? 1);
  if (na > 0 && nb > 0) row.cosine = clamp((sign * lowRankInner(fa, fb)) / (na * nb));
  row.subspaceSimilarity = fa.outputAxis === fb.outputAxis ? subspaceSimilarity(fa, fb) : null;
  return row;
}

const clamp = (c: number) => Math.max(-1, Math.min(1, c));

export function summarize(modules: readonly DiffModule[]): DiffReport['summary'] {
  const both = modules.filter((m) => m.status === 'both');
  const cos = both.map((m) => m.cosine).filter((c): c is number => c !== null);
  return {
    both: both.length,
    onlyA: modules.filter((m) => m.status === 'only-a').length,
    onlyB: modules.filter((m) => m.status === 'only-b').length,
    meanCosine: cos.length ? cos.reduce((s, c) => s + c, 0) / cos.length : null,
    minCosine: cos.length ? Math.min(...cos) : null,
    rankChanged: both.filter((m) => m.rA !== m.rB).length,
    alphaChanged: both.filter((m) => m.alphaA !== m.alphaB).length,
  };
}
