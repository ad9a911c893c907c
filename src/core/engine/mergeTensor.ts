/**
 * The new value of one planned base tensor: start from the base (or its replacement), add Σ wᵢ·sᵢ·XᵢYᵢ in fp32,
 * rescale rows for DoRA, round once to the output dtype. Shared by merge, unmerge and the in-memory parity merge.
 */
import type { Adapter } from '../adapter/types';
import type { ComputeBackend, LowRankTerm } from '../compute/backend';
import { fromF32, toF32, type WritableFloat } from '../convert';
import type { Dtype } from '../dtype';
import { inputError, unsupportedError } from '../errors';
import { storedFactors } from './delta';
import { applyDora, doraNormAxis } from './dora';
import type { PlannedUpdate, TensorPlan } from './plan';

const FLOATS: readonly Dtype[] = ['F32', 'F16', 'BF16', 'F64'];
export const isFloatDtype = (d: Dtype): d is WritableFloat => FLOATS.includes(d);

const prod = (xs: readonly number[]) => xs.reduce((p, x) => p * x, 1);

/** rows × cols of a stored tensor as the low-rank math sees it (conv kernels and trailing dims flattened). */
export function matrixDims(shape: readonly number[]): { rows: number; cols: number } {
  if (shape.length === 0) return { rows: 1, cols: 1 };
  if (shape.length === 1) return { rows: 1, cols: shape[0]! };
  return { rows: shape[0]!, cols: prod(shape.slice(1)) };
}

async function lowRankTerm(u: PlannedUpdate, adapter: Adapter, rows: number, cols: number, baseKey: string): Promise<LowRankTerm> {
  const { layer } = u;
  const ck = adapter.checkpoint;
  const [A, B] = await Promise.all([ck.readF32(layer.aKey), ck.readF32(layer.bKey)]);
  const f = storedFactors(layer, A, B);
  if (f.rows !== rows || f.cols !== cols) {
    throw inputError('ShapeMismatch', `${baseKey} is ${rows}×${cols} but the update of ${layer.module} is ${f.rows}×${f.cols}`, adapter.path);
  }
  return { X: f.X, Y: f.Y, rank: f.rank, scale: u.weight * u.scaling };
}

/** Fresh fp32 copy (toF32 may return a view that shares memory with the input). */
function ownedF32(bytes: Uint8Array, dtype: Dtype): Float32Array {
  const v = toF32(bytes, dtype);
  return v.buffer === bytes.buffer ? v.slice() : v;
}

const f32Bytes = (v: Float32Array) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

export interface MergeTensorArgs {
  plan: TensorPlan;
  /** The base tensor's stored bytes (ignored when the plan replaces it). */
  baseBytes: Uint8Array | null;
  adapters: readonly Adapter[];
  backend: ComputeBackend;
  /** Storage dtype of the result (the base dtype, or --dtype for floating tensors). */
  outDtype: Dtype;
  /** The base bytes are ours to overwrite (saves one tensor of memory). */
  mayReuseBase?: boolean;
}

export async function mergeTensor(a: MergeTensorArgs): Promise<Uint8Array> {
  const { plan, adapters, backend, outDtype } = a;
  let src: Uint8Array;
  let dtype: Dtype;
  let owned = a.mayReuseBase ?? false;
  if (plan.replacement) {
    const t = plan.replacement.tensor;
    src = await adapters[plan.replacement.adapterIndex]!.checkpoint.readBytes(t.key);
    dtype = t.dtype;
    owned = false;
  } else {
    if (!a.baseBytes) throw inputError('Internal', `no bytes for ${plan.baseKey}`);
    src = a.baseBytes;
    dtype = plan.info.dtype;
  }
  const { rows, cols } = matrixDims(plan.info.shape);

  const terms: LowRankTerm[] = [];
  for (const u of plan.updates) terms.push(await lowRankTerm(u, adapters[u.adapterIndex]!, rows, cols, plan.baseKey));
  if (plan.dora) terms.push(await lowRankTerm(plan.dora, adapters[plan.dora.adapterIndex]!, rows, cols, plan.baseKey));
  for (const b of plan.biasAdds) {
    const bias = await adapters[b.adapterIndex]!.checkpoint.readF32(b.key);
    if (bias.length !== rows * cols) throw inputError('ShapeMismatch', `${b.key} has ${bias.length} values, ${plan.baseKey} has ${rows * cols}`);
    terms.push({ X: new Float32Array([1]), Y: bias, rank: 1, scale: b.weight * b.scaling });
  }

  if (dtype === outDtype && terms.length === 0) return src;
  if (!isFloatDtype(dtype) || !isFloatDtype(outDtype)) {
    throw unsupportedError('QuantizedBase', `${plan.baseKey} is ${dtype}: quantized/F8 base tensors cannot be merged exactly`);
  }

  // Fast path: the backend adds and rounds straight into the storage dtype.
  if (!plan.dora && dtype === outDtype && dtype !== 'F64') {
    const out = owned ? src : new Uint8Array(src.byteLength);
    await backend.applyLowRank(src, dtype, rows, cols, terms, out);
    return out;
  }

  if (dtype === 'F64') return mergeF64(src, rows, cols, terms, backend, outDtype, plan);

  // fp32 path (DoRA, dtype conversion): one fp32 sum, then one rounding to the output dtype.
  const v = ownedF32(src, dtype);
  if (terms.length > 0) await backend.applyLowRank(f32Bytes(v), 'F32', rows, cols, terms, f32Bytes(v));
  if (plan.dora) {
    const u = plan.dora;
    const m = await adapters[u.adapterIndex]!.checkpoint.readF32(u.layer.magnitudeKey!);
    applyDora(v, rows, cols, m, doraNormAxis(u.layer), plan.baseKey);
  }
  return fromF32(v, outDtype);
}

/** F64 bases: ΔW in fp32 (as everywhere), added in double so the base loses nothing. */
async function mergeF64(
  src: Uint8Array, rows: number, cols: number, terms: LowRankTerm[], backend: ComputeBackend, outDtype: WritableFloat, plan: TensorPlan,
): Promise<Uint8Array> {
  const copy = new Uint8Array(src.byteLength);
  copy.set(src);
  const w = new Float64Array(copy.buffer);
  if (terms.length > 0) {
    const d = new Float32Array(rows * cols);
    await backend.applyLowRank(f32Bytes(d), 'F32', rows, cols, terms, f32Bytes(d));
    for (let i = 0; i < w.length; i++) w[i] = w[i]! + d[i]!;
  }
  if (plan.dora) throw unsupportedError('DoraF64', `${plan.baseKey}: DoRA merges into F64 tensors are not supported`);
  if (outDtype === 'F64') return copy;
  return fromF32(Float32Array.from(w), outDtype);
}
