/**
 * Typed views over storage bytes, shared by the backends. Tensor data inside a safetensors file need not be aligned
 * to its element size (the header length decides), so an unaligned view falls back to an aligned copy.
 * Storage is little-endian, as on every platform Node and onnxruntime ship for.
 */
import type { Dtype } from '../dtype';
import { inputError, unsupportedError } from '../errors';
import type { LowRankTerm } from './backend';

export type MathDtype = 'F32' | 'F16' | 'BF16';

export function elementBytes(dtype: MathDtype): 2 | 4 {
  return dtype === 'F32' ? 4 : 2;
}

export function asMathDtype(dtype: Dtype): MathDtype {
  if (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16') return dtype;
  throw unsupportedError('ComputeDtype', `low-rank update of a ${dtype} tensor is not supported (F32, F16 and BF16 are)`);
}

/** Zero-copy view when aligned, else an aligned copy (`copied` says which, so writers know to copy back). */
export function view32(bytes: Uint8Array): { f32: Float32Array; u32: Uint32Array; copied: boolean } {
  if (bytes.byteOffset % 4 === 0) {
    const len = bytes.byteLength >>> 2;
    return {
      f32: new Float32Array(bytes.buffer, bytes.byteOffset, len),
      u32: new Uint32Array(bytes.buffer, bytes.byteOffset, len),
      copied: false,
    };
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return { f32: new Float32Array(copy.buffer), u32: new Uint32Array(copy.buffer), copied: true };
}

export function view16(bytes: Uint8Array): { u16: Uint16Array; copied: boolean } {
  if (bytes.byteOffset % 2 === 0) return { u16: new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 1), copied: false };
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return { u16: new Uint16Array(copy.buffer), copied: true };
}

/** Bytes of a typed array, for copying a result back into an unaligned `out`. */
export const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Whether two byte ranges share memory (out may alias w; some kernels must not write where they still read). */
export function overlaps(a: Uint8Array, b: Uint8Array): boolean {
  if (a.buffer !== b.buffer) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

export function checkLowRankArgs(w: Uint8Array, dtype: Dtype, m: number, n: number, terms: readonly LowRankTerm[], out: Uint8Array): MathDtype {
  const d = asMathDtype(dtype);
  if (!Number.isInteger(m) || !Number.isInteger(n) || m < 0 || n < 0) throw inputError('ComputeShape', `invalid tensor shape ${m}×${n}`);
  const bytes = m * n * elementBytes(d);
  if (w.byteLength !== bytes) throw inputError('ComputeShape', `base tensor has ${w.byteLength} bytes, ${m}×${n} ${d} needs ${bytes}`);
  if (out.byteLength !== bytes) throw inputError('ComputeShape', `output buffer has ${out.byteLength} bytes, ${m}×${n} ${d} needs ${bytes}`);
  for (const t of terms) {
    if (!Number.isInteger(t.rank) || t.rank < 0) throw inputError('ComputeShape', `invalid rank ${t.rank}`);
    if (t.X.length !== m * t.rank) throw inputError('ComputeShape', `X has ${t.X.length} values, ${m}×${t.rank} expected`);
    if (t.Y.length !== t.rank * n) throw inputError('ComputeShape', `Y has ${t.Y.length} values, ${t.rank}×${n} expected`);
    if (!Number.isFinite(t.scale)) throw inputError('ComputeScale', `scale ${t.scale} is not finite`);
  }
  return d;
}

export function checkMatmulArgs(x: Float32Array, p: number, n: number, w: Float32Array, m: number): void {
  if (x.length !== p * n) throw inputError('ComputeShape', `X has ${x.length} values, ${p}×${n} expected`);
  if (w.length !== m * n) throw inputError('ComputeShape', `W has ${w.length} values, ${m}×${n} expected`);
}
