/**
 * DoRA merge: W' = (m / ‖W + ΔW‖) ⊙ (W + ΔW), the norm taken per OUTPUT unit of the original base plus the update
 * (PEFT; the DoRA paper's code). In the base tensor's storage orientation an output unit is a row for Linear and Conv
 * (conv kernels flattened into columns), and a column for fan_in_fan_out (GPT-2 Conv1D stores (in, out)) and for
 * embeddings (stored (vocab, dim); PEFT's magnitude has one entry per embedding dimension).
 */
import type { AdapterLayer } from '../adapter/types';
import { inputError } from '../errors';

export type NormAxis = 'rows' | 'cols';

export function doraNormAxis(layer: AdapterLayer): NormAxis {
  if (layer.kind === 'embedding') return 'cols';
  return layer.fanInFanOut ? 'cols' : 'rows';
}

/**
 * Rescales `v` (= W + ΔW in fp32, rows × cols, row-major) in place by m / ‖·‖ along `axis`. The norm is accumulated
 * in double and rounded to fp32, like the factor, so the only difference from torch is its summation order (≪ 1 ulp).
 */
export function applyDora(v: Float32Array, rows: number, cols: number, magnitude: Float32Array, axis: NormAxis, what: string): void {
  const units = axis === 'rows' ? rows : cols;
  if (magnitude.length !== units) {
    throw inputError(
      'DoraMagnitudeShape',
      `${what}: lora_magnitude_vector has ${magnitude.length} values but the weight has ${units} output units (a LyCORIS dora_scale on the input axis?)`,
    );
  }
  const sq = new Float64Array(units);
  if (axis === 'rows') {
    for (let i = 0; i < rows; i++) {
      let s = 0;
      const o = i * cols;
      for (let j = 0; j < cols; j++) s += v[o + j]! * v[o + j]!;
      sq[i] = s;
    }
  } else {
    for (let i = 0; i < rows; i++) {
      const o = i * cols;
      for (let j = 0; j < cols; j++) sq[j] += v[o + j]! * v[o + j]!;
    }
  }
  const factor = new Float32Array(units);
  for (let u = 0; u < units; u++) {
    const n = Math.fround(Math.sqrt(sq[u]!));
    if (!(n > 0) || !Number.isFinite(n)) {
      throw inputError('DoraZeroNorm', `${what}: output unit ${u} has norm ${n} after the update, so DoRA's m/‖W+ΔW‖ is undefined`);
    }
    factor[u] = magnitude[u]! / n;
  }
  if (axis === 'rows') {
    for (let i = 0; i < rows; i++) {
      const f = factor[i]!;
      const o = i * cols;
      for (let j = 0; j < cols; j++) v[o + j] = f * v[o + j]!;
    }
  } else {
    for (let i = 0; i < rows; i++) {
      const o = i * cols;
      for (let j = 0; j < cols; j++) v[o + j] = factor[j]! * v[o + j]!;
    }
  }
}
