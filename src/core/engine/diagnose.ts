/**
 * Why a layer failed parity, in one sentence, from D = W' − W0 and the adapter's unscaled update U = X·Y (both in the
 * base tensor's storage orientation). Pure functions over Float32Arrays: parity feeds them the one failing layer, tests
 * feed them constructed mistakes.
 *
 * Order of the checks matters — each later one assumes the earlier ones did not fire: non-finite values, nothing merged,
 * wrong enable_lora blocks, transposed update, changes confined to a few rows/columns, a wrong scale (α, rsLoRA, merged
 * twice, subtracted), rounding only, and finally "does not match this adapter".
 */
import type { ScalingRule } from '../adapter/types';

export type DiagnosisCode =
  | 'missing' | 'shape' | 'non-finite' | 'not-merged' | 'mask' | 'transposed' | 'outside'
  | 'twice' | 'scaling' | 'rslora' | 'sign' | 'dora' | 'rounding' | 'mismatch'
  | 'not-replaced' | 'replaced-other' | 'bias-not-added';

export interface Diagnosis {
  code: DiagnosisCode;
  /** s* = ⟨D, U⟩/⟨U, U⟩ (same units as the layer's scaling); null when it cannot be estimated. */
  estimatedScaling: number | null;
  sentence: string;
}

export interface DiagnoseInput {
  /** W' − W0 (DoRA: W'/c − W0), storage orientation, rows × cols. */
  D: Float32Array;
  /** X·Y without scaling, storage orientation. */
  U: Float32Array;
  rows: number;
  cols: number;
  /** Half an ulp of each stored merged value (the rounding a correct merge may carry), rows × cols. */
  halfUlp: Float32Array;
  /** Expected scaling (× the adapter weight); null when α is unknown. */
  scaling: number | null;
  alpha: number | null;
  r: number;
  scalingRule: ScalingRule;
  /** MergedLinear mask; blocks run along the output axis. */
  enableLora: boolean[] | null;
  /** Which storage axis holds the outputs: 'cols' for fan_in_fan_out (and embeddings' dim). */
  outputAxis: 'rows' | 'cols';
  fanInFanOut: boolean;
}

/** Short decimal for sentences: 4 significant digits, no trailing zeros. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e6) return String(Number(x.toPrecision(4)));
  return x.toExponential(2);
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

const norm = (a: Float32Array) => Math.sqrt(dot(a, a));

/** ⟨D, Uᵀ⟩ for square n × n matrices. */
function dotTransposed(D: Float32Array, U: Float32Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) s += D[i * n + j]! * U[j * n + i]!;
  return s;
}

/** ‖D − t·Uᵀ‖ for square matrices. */
function residualTransposed(D: Float32Array, U: Float32Array, n: number, t: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const r = D[i * n + j]! - t * U[j * n + i]!;
      s += r * r;
    }
  }
  return Math.sqrt(s);
}

/** Output-block index of element (i, j) when the output axis is split into `blocks` equal blocks. */
function blockStats(inp: DiagnoseInput, blocks: number) {
  const { rows, cols, D, U, halfUlp, outputAxis } = inp;
  const outLen = outputAxis === 'rows' ? rows : cols;
  const size = outLen / blocks;
  const dd = new Float64Array(blocks);
  const uu = new Float64Array(blocks);
  const ee = new Float64Array(blocks);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const idx = i * cols + j;
      const b = Math.floor((outputAxis === 'rows' ? i : j) / size);
      dd[b] += D[idx]! * D[idx]!;
      uu[b] += U[idx]! * U[idx]!;
      ee[b] += halfUlp[idx]! * halfUlp[idx]!;
    }
  }
  return { size, nD: Array.from(dd, Math.sqrt), nU: Array.from(uu, Math.sqrt), eps: Array.from(ee, Math.sqrt) };
}

/** Cosine between output block a of D and output block b of U. */
function blockCosine(inp: DiagnoseInput, size: number, a: number, b: number): number {
  const { rows, cols, D, U, outputAxis } = inp;
  let du = 0, d2 = 0, u2 = 0;
  if (outputAxis === 'rows') {
    for (let k = 0; k < size; k++) {
      for (let j = 0; j < cols; j++) {
        const d = D[(a * size + k) * cols + j]!, u = U[(b * size + k) * cols + j]!;
        du += d * u; d2 += d * d; u2 += u * u;
      }
    }
  } else {
    for (let i = 0; i < rows; i++) {
      for (let k = 0; k < size; k++) {
        const d = D[i * cols + a * size + k]!, u = U[i * cols + b * size + k]!;
        du += d * u; d2 += d * d; u2 += u * u;
      }
    }
  }
  return d2 > 0 && u2 > 0 ? du / Math.sqrt(d2 * u2) : 0;
}

function blockName(b: number, blocks: number): string {
  return blocks === 3 ? (['q', 'k', 'v'] as const)[b]! : String(b);
}

function maskCheck(inp: DiagnoseInput, nD: number): string | null {
  const mask = inp.enableLora;
  if (!mask || mask.length < 2) return null;
  const blocks = mask.length;
  const outLen = inp.outputAxis === 'rows' ? inp.rows : inp.cols;
  if (outLen % blocks !== 0) return null;
  const st = blockStats(inp, blocks);
  const active = st.nD.map((d, b) => d > Math.max(2 * st.eps[b]!, 1e-3 * nD));
  const s = Math.abs(inp.scaling ?? 1);
  const wrongOn: number[] = [];
  const missing: number[] = [];
  mask.forEach((on, b) => {
    if (!on && active[b]) wrongOn.push(b);
    if (on && !active[b] && s * st.nU[b]! > 2 * st.eps[b]!) missing.push(b);
  });
  if (wrongOn.length === 0 && missing.length === 0) return null;
  const name = (b: number) => blockName(b, blocks);
  const enabled = mask.flatMap((on, b) => (on ? [name(b)] : []));
  const parts: string[] = [];
  for (const b of wrongOn) {
    let best = -1, bestCos = 0.9;
    mask.forEach((on, e) => {
      if (!on) return;
      const c = Math.abs(blockCosine(inp, st.size, b, e));
      if (c > bestCos) { bestCos = c; best = e; }
    });
    parts.push(`update found in block ${name(b)}${best >= 0 ? ` (the update meant for ${name(best)})` : ''}`);
  }
  if (missing.length) parts.push(`none in enabled block${missing.length > 1 ? 's' : ''} ${missing.map(name).join(',')}`);
  return `wrong enable_lora blocks: ${parts.join('; ')}; config enables ${enabled.join(',') || 'none'} (${JSON.stringify(mask)})`;
}

interface Concentration {
  axis: 'row' | 'col';
  indices: number[];
}

/** Rows (or columns) that hold ≥ 90 % of ‖residual‖² when they are few (≤ max(2, 5 %)). */
function concentratedResidual(R: Float32Array, rows: number, cols: number): Concentration | null {
  const rr = new Float64Array(rows);
  const cc = new Float64Array(cols);
  let total = 0;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const v = R[i * cols + j]! * R[i * cols + j]!;
      rr[i] += v; cc[j] += v; total += v;
    }
  }
  const pick = (w: Float64Array, n: number): number[] | null => {
    const order = Array.from(w.keys()).sort((a, b) => w[b]! - w[a]!);
    const limit = Math.max(2, Math.ceil(0.05 * n));
    let acc = 0;
    for (let k = 0; k < Math.min(limit, n); k++) {
      acc += w[order[k]!]!;
      if (acc >= 0.9 * total) return order.slice(0, k + 1).sort((a, b) => a - b);
    }
    return null;
  };
  if (total === 0) return null;
  const r = rows > 2 ? pick(rr, rows) : null;
  const c = cols > 2 ? pick(cc, cols) : null;
  if (r && (!c || r.length <= c.length)) return { axis: 'row', indices: r };
  if (c) return { axis: 'col', indices: c };
  return null;
}

const near = (k: number, c: number, rel = 0.02) => Math.abs(k - c) <= rel * Math.abs(c);

/** The sentence for a merge whose change is k·s·U (k ≠ 1); exported for DoRA hypotheses in parity. */
export function describeScale(k: number, sStar: number, inp: Pick<DiagnoseInput, 'scaling' | 'alpha' | 'r' | 'scalingRule'>): { code: DiagnosisCode; sentence: string } {
  const s = inp.scaling!;
  const a = inp.alpha;
  const aSays = a !== null ? ` (α=${fmt(a * k)} was used, config says ${fmt(a)})` : '';
  const base = `merged with scaling ${fmt(sStar)}, ${fmt(k)}× the config's ${fmt(s)}`;
  const sqrtR = Math.sqrt(inp.r);
  // r = 4 or 16 makes α/√r vs α/r a factor 2 or 4: say both possibilities.
  const rs = inp.r > 1 && inp.scalingRule === 'alpha/r' && near(k, sqrtR)
    ? '; or α/√r (rsLoRA) was used where the config gives α/r'
    : inp.r > 1 && inp.scalingRule === 'alpha/sqrt(r)' && near(k, 1 / sqrtR)
      ? '; or α/r was used where the config says use_rslora (α/√r)'
      : '';
  if (near(k, -1)) return { code: 'sign', sentence: `the update was subtracted (scaling ${fmt(sStar)} instead of ${fmt(s)}: unmerged instead of merged?)` };
  if (near(k, 2)) {
    return { code: 'twice', sentence: `merged twice, or merged with scaling 2× the config's${aSays}${rs}` };
  }
  if (near(k, 3) || near(k, 4)) {
    const n = Math.round(k);
    return { code: 'twice', sentence: `merged ${n} times, or merged with scaling ${n}× the config's${aSays}${rs}` };
  }
  if (inp.scalingRule === 'alpha/r' && inp.r > 1 && near(k, sqrtR)) {
    return { code: 'rslora', sentence: `${base}: α/√r (rsLoRA) was used where the config gives α/r${aSays}` };
  }
  if (inp.scalingRule === 'alpha/sqrt(r)' && inp.r > 1 && near(k, 1 / sqrtR)) {
    return { code: 'rslora', sentence: `${base}: α/r was used where the config says use_rslora (α/√r)${aSays}` };
  }
  if (near(sStar, 1) && !near(s, 1)) {
    const said = a !== null ? ` (α=${fmt(a * k)} was used, config says ${fmt(a)}; or α was ignored: scale 1, as when α is taken to equal r)` : ': α was ignored (scale 1, as when α is taken to equal r)';
    return { code: 'scaling', sentence: `${base}${said}` };
  }
  if (a !== null && inp.scalingRule === 'alpha/r' && near(sStar, a) && inp.r > 1) {
    return { code: 'scaling', sentence: `${base}: α=${fmt(a)} was used as the scale without dividing by r=${inp.r}` };
  }
  return { code: 'scaling', sentence: `${base}${aSays}${rs}` };
}

export function diagnoseUpdate(inp: DiagnoseInput): Diagnosis {
  const { D, U, rows, cols, halfUlp } = inp;
  for (let i = 0; i < D.length; i++) {
    if (!Number.isFinite(D[i]!)) {
      return { code: 'non-finite', estimatedScaling: null, sentence: `non-finite values (NaN/Inf) in the merged weights (first at row ${Math.floor(i / cols)}, col ${i % cols})` };
    }
  }
  const nD = norm(D);
  const uu = dot(U, U);
  const nU = Math.sqrt(uu);
  const eps = norm(halfUlp);
  const s = inp.scaling;

  if (uu === 0) {
    return nD <= 2 * eps
      ? { code: 'rounding', estimatedScaling: null, sentence: 'rounding only (this adapter\'s ΔW is zero)' }
      : { code: 'mismatch', estimatedScaling: null, sentence: `the merged weights differ from the base (‖W'−W0‖ = ${fmt(nD)}) although this adapter's ΔW is zero: wrong adapter or base?` };
  }
  let sStar = dot(D, U) / uu;

  if (nD <= 2 * eps) {
    return {
      code: 'not-merged', estimatedScaling: sStar,
      sentence: nD === 0 ? 'not merged (merged weights equal the base)' : 'not merged (merged weights equal the base up to rounding)',
    };
  }

  const mask = maskCheck(inp, nD);
  if (mask) return { code: 'mask', estimatedScaling: sStar, sentence: mask };

  const R = new Float32Array(D.length);
  const fillResidual = (t: number) => { for (let i = 0; i < D.length; i++) R[i] = D[i]! - t * U[i]!; return norm(R); };
  let res = fillResidual(sStar);

  if (rows === cols) {
    const tStar = dotTransposed(D, U, rows) / uu;
    const resT = residualTransposed(D, U, rows, tStar);
    if (resT <= 0.1 * nD && resT < 0.5 * res) {
      const scaleNote = s !== null && !near(tStar / s, 1, 0.02) ? `, with scaling ${fmt(tStar)} instead of ${fmt(s)}` : '';
      return {
        code: 'transposed', estimatedScaling: tStar,
        sentence: `transposed (fan_in_fan_out mix-up): W'−W0 matches ΔWᵀ, not ΔW${scaleNote} (the config says fan_in_fan_out=${inp.fanInFanOut})`,
      };
    }
  }

  if (res > 3 * eps && res > 1e-3 * nD) {
    const conc = concentratedResidual(R, rows, cols);
    if (conc) {
      // Refit s* without the odd rows/cols so one corrupted row cannot skew it, then locate the worst element there.
      const inSet = new Uint8Array(conc.axis === 'row' ? rows : cols);
      for (const i of conc.indices) inSet[i] = 1;
      let du = 0, u2 = 0;
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          if (inSet[conc.axis === 'row' ? i : j]) continue;
          du += D[i * cols + j]! * U[i * cols + j]!; u2 += U[i * cols + j]! * U[i * cols + j]!;
        }
      }
      if (u2 > 0) sStar = du / u2;
      fillResidual(sStar);
      let worst = 0, wi = 0, wj = 0;
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          const v = Math.abs(R[i * cols + j]!);
          if (v > worst) { worst = v; wi = i; wj = j; }
        }
      }
      const n = conc.indices.length;
      const where = conc.axis === 'row' ? `row${n > 1 ? 's' : ''} ${conc.indices.slice(0, 5).join(',')}${n > 5 ? ',…' : ''}` : `column${n > 1 ? 's' : ''} ${conc.indices.slice(0, 5).join(',')}${n > 5 ? ',…' : ''}`;
      return {
        code: 'outside', estimatedScaling: sStar,
        sentence: `changes outside the adapter's update in ${where} (max |residual| ${fmt(worst)} at row ${wi}, col ${wj})`,
      };
    }
  }

  const cosine = dot(D, U) / (nD * nU);
  if (res <= 0.2 * nD) {
    if (s === null) {
      return { code: 'scaling', estimatedScaling: sStar, sentence: `merged with scaling ${fmt(sStar)} (α is unknown, so the expected scaling is not known)` };
    }
    const k = sStar / s;
    if (!near(k, 1, 0.01)) {
      const d = describeScale(k, sStar, inp);
      return { code: d.code, estimatedScaling: sStar, sentence: d.sentence };
    }
    const ulps = eps > 0 ? res / eps : Infinity;
    return {
      code: 'rounding', estimatedScaling: sStar,
      sentence: `rounding only: W'−W0 matches s·ΔW up to ${fmt(ulps)}× the storage rounding (‖residual‖ ${fmt(res)}); the merge computed in a lower precision? raise the tolerance factor if that is expected`,
    };
  }
  return {
    code: 'mismatch', estimatedScaling: sStar,
    sentence: `the merged change does not match this adapter's ΔW (cosine ${fmt(cosine)}, best-fit scaling ${fmt(sStar)}): wrong adapter, base or layout?`,
  };
}

/** Merged tensor shape vs the base's: a transposed shape is the non-square fan_in_fan_out mix-up. */
export function diagnoseShape(baseShape: readonly number[], mergedShape: readonly number[], fanInFanOut: boolean): Diagnosis {
  const transposed = baseShape.length === 2 && mergedShape.length === 2 && baseShape[0] === mergedShape[1] && baseShape[1] === mergedShape[0];
  return {
    code: transposed ? 'transposed' : 'shape',
    estimatedScaling: null,
    sentence: transposed
      ? `transposed (fan_in_fan_out mix-up): the merged tensor has shape [${mergedShape.join(', ')}], the base [${baseShape.join(', ')}] (the config says fan_in_fan_out=${fanInFanOut})`
      : `shape mismatch: the merged tensor has shape [${mergedShape.join(', ')}], the base [${baseShape.join(', ')}]`,
  };
}

/** How a replaced tensor's merged values compare with the adapter's (gathered chunk by chunk by parity). */
export interface ReplacedSummary {
  /** Elements compared. */
  n: number;
  /** Elements that differ from the adapter's values rounded to the merged dtype. */
  differ: number;
  /** Largest |merged − expected| and its flat index. */
  worst: number;
  at: number;
  /** Every merged value equals the base's (rounded to the merged dtype). */
  equalsBase: boolean;
  /** First merged element that is NaN/Inf where the adapter's is not, or null. */
  nonFiniteAt: number | null;
}

/**
 * A full tensor the adapter replaces (modules_to_save, a classification head, a saved bias) that does not hold the
 * adapter's values: left as the base's (the usual mistake of merge scripts that only fold the low-rank layers), or
 * something else.
 */
export function diagnoseReplaced(r: ReplacedSummary): Diagnosis {
  if (r.differ === 0) return { code: 'rounding', estimatedScaling: null, sentence: 'identical to the adapter\'s tensor' };
  if (r.equalsBase) {
    return { code: 'not-replaced', estimatedScaling: null, sentence: "not replaced: still the base's tensor (modules_to_save / head saved in the adapter)" };
  }
  if (r.nonFiniteAt !== null) {
    return { code: 'non-finite', estimatedScaling: null, sentence: `non-finite values (NaN/Inf) in the merged tensor (first at element ${r.nonFiniteAt}) where the adapter's are finite` };
  }
  return {
    code: 'replaced-other', estimatedScaling: null,
    sentence: `replaced with something else: ${r.differ} of ${r.n} values differ from the adapter's tensor (max |diff| ${fmt(r.worst)} at element ${r.at})`,
  };
}

export interface BiasAddInput {
  /** Merged bias − starting bias (the base's, or the adapter's replacement). */
  D: Float64Array;
  /** The adapter's lora_B.bias (unscaled; several terms already combined in units of `scaling`). */
  U: Float64Array;
  /** Half an ulp of each stored merged value. */
  halfUlp: Float64Array;
  scaling: number;
  alpha: number | null;
  r: number;
  scalingRule: ScalingRule;
}

/** Why merged bias ≠ base bias + s·lora_B.bias (PEFT lora_bias=True). */
export function diagnoseBiasAdd(inp: BiasAddInput): Diagnosis {
  const { D, U, halfUlp } = inp;
  for (let i = 0; i < D.length; i++) {
    if (!Number.isFinite(D[i]!)) {
      return { code: 'non-finite', estimatedScaling: null, sentence: `non-finite values (NaN/Inf) in the merged bias (first at element ${i})` };
    }
  }
  let dd = 0, uu = 0, du = 0, ee = 0;
  for (let i = 0; i < D.length; i++) {
    dd += D[i]! * D[i]!; uu += U[i]! * U[i]!; du += D[i]! * U[i]!; ee += halfUlp[i]! * halfUlp[i]!;
  }
  const nD = Math.sqrt(dd);
  const eps = Math.sqrt(ee);
  const sStar = uu > 0 ? du / uu : null;
  if (nD <= 2 * eps && uu > 0) {
    return {
      code: 'bias-not-added', estimatedScaling: sStar,
      sentence: `lora_B.bias not added (the merged bias equals the base bias${nD === 0 ? '' : ' up to rounding'})`,
    };
  }
  if (sStar === null) {
    return { code: 'mismatch', estimatedScaling: null, sentence: `the merged bias differs from the base (‖b'−b0‖ = ${fmt(nD)}) although lora_B.bias is zero: wrong adapter or base?` };
  }
  let rr = 0;
  for (let i = 0; i < D.length; i++) rr += (D[i]! - sStar * U[i]!) ** 2;
  const res = Math.sqrt(rr);
  if (res <= 0.2 * nD) {
    const k = sStar / inp.scaling;
    if (!near(k, 1, 0.01)) {
      const d = describeScale(k, sStar, inp);
      return { code: d.code, estimatedScaling: sStar, sentence: `lora_B.bias added with factor ${fmt(sStar)} instead of ${fmt(inp.scaling)}: ${d.sentence}` };
    }
    return {
      code: 'rounding', estimatedScaling: sStar,
      sentence: `rounding only: b'−b0 matches s·lora_B.bias up to ${fmt(eps > 0 ? res / eps : Infinity)}× the storage rounding; the merge computed in a lower precision? raise the tolerance factor if that is expected`,
    };
  }
  return {
    code: 'mismatch', estimatedScaling: sStar,
    sentence: `the merged bias does not match base bias + s·lora_B.bias (cosine ${fmt(du / (nD * Math.sqrt(uu)))}, best-fit factor ${fmt(sStar)})`,
  };
}
