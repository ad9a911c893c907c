/**
 * Every layer kind's update reduces to ΔW_stored = scaling · X·Y in the BASE TENSOR'S STORAGE ORIENTATION
 * (rows × cols of the stored weight, conv kernels flattened into cols). Merge, unmerge, parity, stats and diff
 * all start from these factors, so the layout rules (fan_in_fan_out, MergedLinear blocks, embedding transposition,
 * conv flattening) live in exactly one place.
 */
import type { AdapterLayer } from '../adapter/types';
import { inputError } from '../errors';

export interface StoredFactors {
  /** rows × rank */
  X: Float32Array;
  /** rank × cols */
  Y: Float32Array;
  rows: number;
  cols: number;
  rank: number;
}

export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    for (let j = 0; j < cols; j++) t[j * rows + i] = a[o + j]!;
  }
  return t;
}

const prod = (xs: readonly number[]) => xs.reduce((p, x) => p * x, 1);

/**
 * B (out_g·g × r) of a MergedLinear, zero-padded into a block-diagonal (out × r·g): enabled block k (the k-th true
 * flag, at mask position j) occupies rows [j·out_g, (j+1)·out_g) and columns [k·r, (k+1)·r) — loralib's grouped
 * conv1d followed by zero_pad.
 */
export function padMergedB(B: Float32Array, layer: AdapterLayer): Float32Array {
  const mask = layer.enableLora;
  if (!mask) throw inputError('NoMask', `${layer.module}: MergedLinear layer without enable_lora`);
  const g = mask.filter(Boolean).length;
  const r = layer.r;
  const outG = layer.outFeatures / mask.length;
  if (!Number.isInteger(outG) || B.length !== outG * g * r) {
    throw inputError('MaskShape', `${layer.module}: enable_lora ${JSON.stringify(mask)} does not fit lora_B [${layer.bShape.join(', ')}] with ${layer.outFeatures} outputs`);
  }
  const R = r * g;
  const P = new Float32Array(layer.outFeatures * R);
  let k = 0;
  mask.forEach((on, j) => {
    if (!on) return;
    for (let i = 0; i < outG; i++) {
      const src = (k * outG + i) * r;
      const dst = (j * outG + i) * R + k * r;
      for (let c = 0; c < r; c++) P[dst + c] = B[src + c]!;
    }
    k++;
  });
  return P;
}

/** A and B as read from the adapter (fp32, C order, any trailing 1-dims of conv/3-D B included). */
export function storedFactors(layer: AdapterLayer, A: Float32Array, B: Float32Array): StoredFactors {
  switch (layer.kind) {
    case 'linear': {
      const { r, inFeatures: k, outFeatures: d } = layer;
      return layer.fanInFanOut
        ? { X: transpose(A, r, k), Y: transpose(B, d, r), rows: k, cols: d, rank: r }
        : { X: B, Y: A, rows: d, cols: k, rank: r };
    }
    case 'merged-linear': {
      const g = layer.enableLora!.filter(Boolean).length;
      const R = layer.r * g;
      const P = padMergedB(B, layer);
      const { inFeatures: k, outFeatures: d } = layer;
      return layer.fanInFanOut
        ? { X: transpose(A, R, k), Y: transpose(P, d, R), rows: k, cols: d, rank: R }
        : { X: P, Y: A, rows: d, cols: k, rank: R };
    }
    case 'embedding': {
      // lora_embedding_A (r × num_embeddings), lora_embedding_B (dim × r); W is (num_embeddings × dim); ΔW = (B·A)ᵀ.
      const { r } = layer;
      const numEmb = layer.aShape[1]!;
      const dim = layer.bShape[0]!;
      return { X: transpose(A, r, numEmb), Y: transpose(B, dim, r), rows: numEmb, cols: dim, rank: r };
    }
    case 'conv': {
      // ΔW[o,i,…] = Σ_r B[o,r]·A[r,i,…]: B (out, r, 1…) and A (r, in, k…) flattened.
      const { r, outFeatures: d } = layer;
      const cols = prod(layer.aShape.slice(1));
      return { X: B, Y: A, rows: d, cols, rank: r };
    }
  }
}
