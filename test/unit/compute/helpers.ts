// Shared by the compute tests: a seeded generator, storage encoders from float64, and ulp distances.
import { bitsToF32, f16ToF32Bits } from '../../../src/core/compute/ts/halfs';

export function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

export type Storage = 'F32' | 'F16' | 'BF16';

/** Every element of a storage buffer, as float64. */
export function values(bytes: Uint8Array, dtype: Storage): Float64Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = bytes.byteLength / (dtype === 'F32' ? 4 : 2);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    if (dtype === 'F32') out[i] = dv.getFloat32(i * 4, true);
    else {
      const h = dv.getUint16(i * 2, true);
      out[i] = dtype === 'F16' ? bitsToF32(f16ToF32Bits(h)) : bitsToF32((h << 16) >>> 0);
    }
  }
  return out;
}

/** Position of each element on a monotone integer line of representable values: ulp distance = difference. */
export function ordinals(bytes: Uint8Array, dtype: Storage): Float64Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = bytes.byteLength / (dtype === 'F32' ? 4 : 2);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const b = dtype === 'F32' ? dv.getUint32(i * 4, true) : dv.getUint16(i * 2, true);
    const signBit = dtype === 'F32' ? 0x80000000 : 0x8000;
    out[i] = b >= signBit ? -(b - signBit) : b;
  }
  return out;
}

/**
 * Random storage bytes: magnitudes in [lo, hi) with random signs when `signed`, drawn as fp32 and truncated to the
 * storage width (for F16, exponent rebiased); inputs only need to be valid values of the dtype, not rounded ones.
 */
export function randomStorage(dtype: Storage, count: number, rand: () => number, lo: number, hi: number, signed: boolean): Uint8Array {
  const bytes = new Uint8Array(count * (dtype === 'F32' ? 4 : 2));
  const dv = new DataView(bytes.buffer);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < count; i++) {
    f[0] = (signed && rand() < 0.5 ? -1 : 1) * (lo + (hi - lo) * rand());
    const b = u[0]!;
    if (dtype === 'F32') dv.setUint32(i * 4, b, true);
    else if (dtype === 'BF16') dv.setUint16(i * 2, b >>> 16, true);
    else {
      // |v| in the fp16 normal range: rebias 127 → 15 and keep the top 10 mantissa bits
      const e = ((b >>> 23) & 0xff) - 112;
      assertRange(e > 0 && e < 31, `fp16 test value out of range: ${f[0]}`);
      dv.setUint16(i * 2, ((b >>> 16) & 0x8000) | (e << 10) | ((b >>> 13) & 0x3ff), true);
    }
  }
  return bytes;
}

function assertRange(ok: boolean, msg: string): void {
  if (!ok) throw new Error(msg);
}

/** Unit in the last place of the storage dtype at |v| (normal range). */
export function ulpOf(v: number, dtype: Storage): number {
  const bits = dtype === 'F32' ? 23 : dtype === 'F16' ? 10 : 7;
  const minExp = dtype === 'F16' ? -14 : -126;
  const e = v === 0 ? minExp : Math.max(Math.floor(Math.log2(Math.abs(v))), minExp);
  return 2 ** (e - bits);
}

/** Σ scale·X·Y + w in float64 for element (i, j), and Σ|·| (the size the fp32 rounding error scales with). */
export function exactElement(w: number, terms: readonly { X: Float32Array; Y: Float32Array; rank: number; scale: number }[], n: number, i: number, j: number): { value: number; magnitude: number } {
  let value = w;
  let magnitude = Math.abs(w);
  for (const t of terms) {
    for (let k = 0; k < t.rank; k++) {
      const p = t.scale * t.X[i * t.rank + k]! * t.Y[k * n + j]!;
      value += p;
      magnitude += Math.abs(p);
    }
  }
  return { value, magnitude };
}
