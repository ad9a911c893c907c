/**
 * The graphs the ORT backend runs. Every dimension is symbolic, so one session per graph serves every layer, and the
 * scale is an input rather than Gemm's `alpha` attribute for the same reason.
 */
import { encodeModel, OnnxType, type OnnxGraph } from './onnxProto';

export type GraphKind = 'lowRankF32' | 'lowRankF16' | 'matmulNT' | 'castF16';

/** out = W + (s·X)·Y in fp32: Gemm with C = W does the add in the same pass as the product. */
const lowRankF32: OnnxGraph = {
  name: 'low_rank_f32',
  inputs: [
    { name: 'W', type: OnnxType.FLOAT, shape: ['m', 'n'] },
    { name: 'X', type: OnnxType.FLOAT, shape: ['m', 'R'] },
    { name: 'Y', type: OnnxType.FLOAT, shape: ['R', 'n'] },
    { name: 's', type: OnnxType.FLOAT, shape: [] },
  ],
  outputs: [{ name: 'out', type: OnnxType.FLOAT, shape: ['m', 'n'] }],
  nodes: [
    { op: 'Mul', inputs: ['X', 's'], outputs: ['Xs'] },
    { op: 'Gemm', inputs: ['Xs', 'Y', 'W'], outputs: ['out'] },
  ],
};

/**
 * The same with fp16 storage: Cast in, fp32 Gemm, Cast out (one rounding). Used only on an execution provider whose
 * fp32→fp16 Cast has been checked to be round-to-nearest-even (see castCheck.ts).
 */
const lowRankF16: OnnxGraph = {
  name: 'low_rank_f16',
  inputs: [
    { name: 'W', type: OnnxType.FLOAT16, shape: ['m', 'n'] },
    { name: 'X', type: OnnxType.FLOAT, shape: ['m', 'R'] },
    { name: 'Y', type: OnnxType.FLOAT, shape: ['R', 'n'] },
    { name: 's', type: OnnxType.FLOAT, shape: [] },
  ],
  outputs: [{ name: 'out', type: OnnxType.FLOAT16, shape: ['m', 'n'] }],
  nodes: [
    { op: 'Cast', inputs: ['W'], outputs: ['W32'], attributes: { to: { i: OnnxType.FLOAT } } },
    { op: 'Mul', inputs: ['X', 's'], outputs: ['Xs'] },
    { op: 'Gemm', inputs: ['Xs', 'Y', 'W32'], outputs: ['sum'] },
    { op: 'Cast', inputs: ['sum'], outputs: ['out'], attributes: { to: { i: OnnxType.FLOAT16 } } },
  ],
};

/** Y (p×m) = X (p×n) · Wᵀ, W (m×n). */
const matmulNT: OnnxGraph = {
  name: 'matmul_nt',
  inputs: [
    { name: 'X', type: OnnxType.FLOAT, shape: ['p', 'n'] },
    { name: 'W', type: OnnxType.FLOAT, shape: ['m', 'n'] },
  ],
  outputs: [{ name: 'Y', type: OnnxType.FLOAT, shape: ['p', 'm'] }],
  nodes: [{ op: 'Gemm', inputs: ['X', 'W'], outputs: ['Y'], attributes: { transB: { i: 1 } } }],
};

/** fp32 → fp16 → fp32 round trip, to compare the provider's rounding with ours bit for bit. */
const castF16: OnnxGraph = {
  name: 'cast_f16',
  inputs: [{ name: 'x', type: OnnxType.FLOAT, shape: ['k'] }],
  outputs: [
    { name: 'h', type: OnnxType.FLOAT16, shape: ['k'] },
    { name: 'back', type: OnnxType.FLOAT, shape: ['k'] },
  ],
  nodes: [
    { op: 'Cast', inputs: ['x'], outputs: ['h'], attributes: { to: { i: OnnxType.FLOAT16 } } },
    { op: 'Cast', inputs: ['h'], outputs: ['back'], attributes: { to: { i: OnnxType.FLOAT } } },
  ],
};

const GRAPHS: Record<GraphKind, OnnxGraph> = { lowRankF32, lowRankF16, matmulNT, castF16 };
const encoded = new Map<GraphKind, Uint8Array>();

export function graphBytes(kind: GraphKind): Uint8Array {
  let bytes = encoded.get(kind);
  if (!bytes) {
    bytes = encodeModel(GRAPHS[kind]);
    encoded.set(kind, bytes);
  }
  return bytes;
}
