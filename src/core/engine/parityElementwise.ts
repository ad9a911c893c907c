/**
 * Parity for what the low-rank probes never see. A full tensor the adapter replaces (modules_to_save, a classification
 * head, a saved bias) must hold exactly the adapter's values after one rounding to the merged dtype — a merge script
 * that forgets it ships the base's random head. A bias that gets s·lora_B.bias (PEFT lora_bias) must equal
 * base + s·bias within one rounding of its storage dtype. Replaced tensors are compared in chunks, so a replaced
 * embedding costs a few MiB rather than three dense copies.
 */
import type { Adapter } from '../adapter/types';
import { throwIfCancelled, type CancelToken } from '../cancel';
import type { Checkpoint, TensorInfo } from '../checkpoint';
import type { ComputeBackend } from '../compute/backend';
import { f32Bits, f32FromBits, fromF32, toF32, type WritableFloat } from '../convert';
import { DTYPE_BITS, type Dtype } from '../dtype';
import type { ParityLayer } from '../reports';
import { rangeReaderOf } from './bufferPool';
import { diagnoseBiasAdd, diagnoseReplaced, type Diagnosis } from './diagnose';
import { isFloatDtype, mergeTensor } from './mergeTensor';
import type { TensorPlan } from './plan';
import { elementTolerance, ulp } from './tolerance';

export interface ElementwiseContext {
  base: Checkpoint;
  adapter: Adapter;
  /** Adapter weight; default 1. */
  weight?: number;
  /** Checkpoint under test; null = the engine's in-memory merge. */
  merged: Checkpoint | null;
  backend: ComputeBackend;
  toleranceFactor?: number;
  cancel?: CancelToken;
}

/** Elements compared per step. */
const CHUNK = 1 << 20;

const fmtShape = (s: readonly number[]) => `[${s.join(', ')}]`;
const numel = (s: readonly number[]) => s.reduce((p, x) => p * x, 1);

/** Equal up to size-1 dims, as the merge planner accepts a head saved as [n, 1] for a base [n]. */
function sameShape(a: readonly number[], b: readonly number[]): boolean {
  const x = a.filter((d) => d !== 1);
  const y = b.filter((d) => d !== 1);
  return numel(a) === numel(b) && x.length === y.length && x.every((d, i) => d === y[i]);
}

/** Bytes of elements [start, end) of one tensor. */
type Source = (start: number, end: number) => Promise<Uint8Array>;

function memorySource(bytes: Uint8Array, dtype: Dtype): Source {
  const size = DTYPE_BITS[dtype] / 8;
  return (start, end) => Promise.resolve(bytes.subarray(start * size, end * size));
}

async function checkpointSource(ck: Checkpoint, info: TensorInfo): Promise<Source> {
  const read = rangeReaderOf(ck);
  if (!read) return memorySource(await ck.readBytes(info.name), info.dtype);
  const size = DTYPE_BITS[info.dtype] / 8;
  return async (start, end) => {
    const out = new Uint8Array((end - start) * size);
    await read(info.name, start * size, out);
    return out;
  };
}

/** Values as exact doubles where the dtype can be decoded; null for dtypes without per-element values (F4, C64). */
function decode(bytes: Uint8Array, dtype: Dtype): Float64Array | null {
  if (dtype === 'F64') return new Float64Array(bytes.slice().buffer);
  try {
    return Float64Array.from(toF32(bytes, dtype));
  } catch {
    return null;
  }
}

/** f64 → f32 rounded to odd: a later RNE rounding to F16/BF16 then equals one direct rounding of the double. */
function roundToOddF32(x: number): number {
  const f = Math.fround(x);
  if (f === x || !Number.isFinite(f) || Number.isNaN(x)) return f;
  let bits = f32Bits(f);
  if (Math.abs(f) > Math.abs(x)) bits = (bits - 1) >>> 0;
  return f32FromBits((bits | 1) >>> 0);
}

/** fp32 values rounded once (RNE) to `dtype` and read back as doubles. */
const roundedTo = (v: Float32Array, dtype: WritableFloat) => Float64Array.from(toF32(fromF32(v, dtype), dtype));

/**
 * The values a correct merge may store for `bytes` (dtype `from`) in dtype `to`: one RNE rounding. F64 sources going to
 * a 16-bit dtype admit two: the direct rounding and the one through fp32 (what the engine and many scripts do).
 */
function convertedCandidates(bytes: Uint8Array, from: Dtype, to: Dtype): Float64Array[] | null {
  if (from === to) {
    const v = decode(bytes, from);
    return v ? [v] : null;
  }
  if (!isFloatDtype(from) || !isFloatDtype(to)) return null;
  if (to === 'F64') return [decode(bytes, from)!];
  const viaF32 = roundedTo(toF32(bytes, from), to);
  if (from !== 'F64' || to === 'F32') return [viaF32];
  const d = decode(bytes, 'F64')!;
  return [roundedTo(Float32Array.from(d, roundToOddF32), to), viaF32];
}

const same = (a: number, b: number) => a === b || (Number.isNaN(a) && Number.isNaN(b));

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The tensor under test: its info in the merged checkpoint and where its bytes come from, or a verdict. */
async function mergedSide(ctx: ElementwiseContext, p: TensorPlan, expectShape: readonly number[], what: string): Promise<{ dtype: Dtype; src: Source } | Diagnosis> {
  if (!ctx.merged) {
    const baseBytes = p.replacement ? null : await ctx.base.readBytes(p.baseKey);
    const bytes = await mergeTensor({ plan: p, baseBytes, adapters: [ctx.adapter], backend: ctx.backend, outDtype: p.info.dtype });
    return { dtype: p.info.dtype, src: memorySource(bytes, p.info.dtype) };
  }
  const mi = ctx.merged.get(p.baseKey);
  if (!mi) return { code: 'missing', estimatedScaling: null, sentence: `missing from the merged checkpoint (${p.baseKey})` };
  if (!sameShape(mi.shape, expectShape)) {
    return {
      code: 'shape', estimatedScaling: null,
      sentence: `shape mismatch: the merged tensor has shape ${fmtShape(mi.shape)}, ${what} ${fmtShape(expectShape)} (the base ${fmtShape(p.info.shape)})`,
    };
  }
  return { dtype: mi.dtype, src: await checkpointSource(ctx.merged, mi) };
}

const failRow = (p: TensorPlan, check: 'replaced' | 'bias', d: Diagnosis, expectedScaling: number | null): ParityLayer => ({
  module: p.baseKey, baseKey: p.baseKey, pass: false, maxAbsDiff: Infinity, tolerance: 0,
  estimatedScaling: d.estimatedScaling, expectedScaling, diagnosis: d.sentence, check,
});

/** A tensor the adapter replaces in full: the merged values must be the adapter's, rounded once to the merged dtype. */
export async function checkReplaced(ctx: ElementwiseContext, p: TensorPlan): Promise<ParityLayer> {
  const t = p.replacement!.tensor;
  const side = await mergedSide(ctx, p, t.shape, "the adapter's replacement");
  if ('code' in side) return failRow(p, 'replaced', side, null);
  if (side.dtype !== t.dtype && !(isFloatDtype(side.dtype) && isFloatDtype(t.dtype))) {
    return failRow(p, 'replaced', { code: 'shape', estimatedScaling: null, sentence: `dtype mismatch: the merged tensor is ${side.dtype}, the adapter's replacement ${t.key} is ${t.dtype}` }, null);
  }
  const adapterInfo = ctx.adapter.checkpoint.get(t.key)!;
  const adapterSrc = await checkpointSource(ctx.adapter.checkpoint, adapterInfo);
  const baseSrc = await checkpointSource(ctx.base, p.info);
  const n = numel(p.info.shape);
  const subByte = [side.dtype, t.dtype, p.info.dtype].some((d) => DTYPE_BITS[d] < 8);
  const step = subByte ? n : CHUNK;

  let differ = 0, worst = 0, at = 0, equalsBase = true, nonFiniteAt: number | null = null;
  for (let start = 0; start < n; start += step) {
    throwIfCancelled(ctx.cancel);
    const end = Math.min(n, start + step);
    const [mb, ab, bb] = await Promise.all([side.src(start, end), adapterSrc(start, end), baseSrc(start, end)]);
    const m = decode(mb, side.dtype);
    const exp = convertedCandidates(ab, t.dtype, side.dtype);
    const base = convertedCandidates(bb, p.info.dtype, side.dtype)?.at(-1) ?? null;
    if (!m || !exp) {
      // Same non-numeric dtype on both sides: bytes decide.
      if (!bytesEqual(mb, ab)) { differ += end - start; worst = Infinity; at = start; }
      if (!(p.info.dtype === side.dtype && bytesEqual(mb, bb))) equalsBase = false;
      continue;
    }
    for (let i = 0; i < m.length; i++) {
      const v = m[i]!;
      if (equalsBase && !(base && same(v, base[i]!))) equalsBase = false;
      let d = Infinity;
      for (const e of exp) d = same(v, e[i]!) ? 0 : Math.min(d, Math.abs(v - e[i]!));
      if (Number.isNaN(d)) d = Infinity;
      if (d === 0) continue;
      if (nonFiniteAt === null && !Number.isFinite(v)) nonFiniteAt = start + i;
      differ++;
      if (d > worst || differ === 1) { worst = d; at = start + i; }
    }
  }
  if (differ === 0) {
    return { module: p.baseKey, baseKey: p.baseKey, pass: true, maxAbsDiff: 0, tolerance: 0, estimatedScaling: null, expectedScaling: null, diagnosis: null, check: 'replaced' };
  }
  const d = diagnoseReplaced({ n, differ, worst, at, equalsBase, nonFiniteAt });
  return { ...failRow(p, 'replaced', d, null), maxAbsDiff: worst };
}

/** A bias that gets Σ w·s·lora_B.bias: merged within one rounding of its dtype of start + the additions. */
export async function checkBiasAdds(ctx: ElementwiseContext, p: TensorPlan): Promise<ParityLayer> {
  const first = p.biasAdds[0]!;
  const s1 = first.weight * first.scaling;
  const side = await mergedSide(ctx, p, p.replacement?.tensor.shape ?? p.info.shape, 'the base bias');
  if ('code' in side) return failRow(p, 'bias', side, s1);
  const n = numel(p.info.shape);
  const start = p.replacement
    ? await ctx.adapter.checkpoint.readF32(p.replacement.tensor.key)
    : await ctx.base.readF32(p.baseKey);
  const m = decode(await side.src(0, n), side.dtype);
  if (!m) {
    return failRow(p, 'bias', { code: 'shape', estimatedScaling: null, sentence: `the merged bias is ${side.dtype}, which has no per-element values to compare` }, s1);
  }
  const U = new Float64Array(n);
  const absAdd = new Float64Array(n);
  let adapterDtype: Dtype = 'F32';
  for (const b of p.biasAdds) {
    const bias = await ctx.adapter.checkpoint.readF32(b.key);
    adapterDtype = ctx.adapter.checkpoint.get(b.key)?.dtype ?? adapterDtype;
    const s = b.weight * b.scaling;
    // s1 = 0 (weight 0) leaves nothing to fit a factor to; U then carries the raw sum.
    const k = s1 !== 0 ? s / s1 : 1;
    for (let i = 0; i < n; i++) {
      U[i] += k * bias[i]!;
      absAdd[i] += Math.abs(s * bias[i]!);
    }
  }
  const factor = ctx.toleranceFactor ?? 1;
  const D = new Float64Array(n);
  const halfUlp = new Float64Array(n);
  let maxAbsDiff = 0, maxTol = 0, worstRatio = -1, worstTol = 0, pass = true;
  for (let i = 0; i < n; i++) {
    const v = m[i]!;
    D[i] = v - start[i]!;
    halfUlp[i] = ulp(v, side.dtype) / 2;
    const diff = Math.abs(D[i]! - (s1 !== 0 ? s1 : 1) * U[i]!);
    const tol = factor * elementTolerance(v, start[i]!, absAdd[i]!, side.dtype, adapterDtype, p.biasAdds.length, 1);
    const d = Number.isNaN(diff) ? Infinity : diff;
    if (d > maxAbsDiff) maxAbsDiff = d;
    if (Number.isFinite(tol) && tol > maxTol) maxTol = tol;
    if (!(d <= tol)) {
      pass = false;
      const ratio = tol > 0 ? d / tol : Infinity;
      if (ratio > worstRatio) { worstRatio = ratio; worstTol = Number.isFinite(tol) ? tol : 0; }
    }
  }
  let du = 0, uu = 0;
  for (let i = 0; i < n; i++) { du += D[i]! * U[i]!; uu += U[i]! * U[i]!; }
  const sStar = uu > 0 ? du / uu : null;
  const row = { module: p.baseKey, baseKey: p.baseKey, expectedScaling: s1, check: 'bias' as const };
  if (pass) return { ...row, pass, maxAbsDiff, tolerance: maxTol, estimatedScaling: sStar, diagnosis: null };
  const layer = first.layer;
  const d = diagnoseBiasAdd({
    D, U, halfUlp, scaling: s1, alpha: layer.alpha !== null && (ctx.weight ?? 1) === 1 ? layer.alpha : null, r: layer.r, scalingRule: layer.scalingRule,
  });
  return { ...row, pass: false, maxAbsDiff, tolerance: worstTol, estimatedScaling: d.estimatedScaling ?? sStar, diagnosis: d.sentence };
}
