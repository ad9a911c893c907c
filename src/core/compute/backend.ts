import type { Dtype } from '../dtype';

export type Device = 'auto' | 'cpu' | 'webgpu' | 'cuda' | 'ts';

/** X (m×R) · Y (R×n), row-major fp32, times `scale`. Every layer kind reduces to this (see engine/delta.ts). */
export interface LowRankTerm {
  X: Float32Array;
  Y: Float32Array;
  rank: number;
  scale: number;
}

/**
 * One interface, several implementations (plain TypeScript; onnxruntime-node on CPU/WebGPU/CUDA) that must
 * agree with each other and with the PyTorch oracles. All math is fp32; stored values are rounded once (RNE).
 */
export interface ComputeBackend {
  /** 'ts' | 'ort-cpu' | 'ort-webgpu' | 'ort-cuda' */
  readonly name: string;
  /**
   * out = round_dtype( f32(w) + Σ term.scale · term.X·term.Y ), w and out in storage dtype `dtype`
   * (F32/F16/BF16), shape m×n row-major. `out` may alias `w`.
   */
  applyLowRank(w: Uint8Array, dtype: Dtype, m: number, n: number, terms: readonly LowRankTerm[], out: Uint8Array): Promise<void>;
  /** Y (p×m) = X (p×n) · Wᵀ with W (m×n) fp32. The parity probe's dense path. */
  matmulNT(x: Float32Array, p: number, n: number, w: Float32Array, m: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export interface BackendSelection {
  backend: ComputeBackend;
  /** Which device ran and why others were skipped, one line each (shown to the user). */
  report: string[];
}
