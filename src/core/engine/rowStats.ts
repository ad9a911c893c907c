/**
 * One pass over a merged and a base weight (forward orientation, rows = outputs) for everything parity needs per row:
 * D = W' − c⊙W0 (fp32, fed to the probe product), ‖W'_i‖, ‖W0_i‖, ‖D_i‖ and h_i = √Σ_j (ulp(W'_ij)/2)².
 * Separate passes (decode both tensors, subtract, three row norms, a per-element ulp with `2 **`) cost ~10× more on
 * billion-element checkpoints. Results are bit-identical to rowNorms / halfUlpRowNorms in tolerance.ts: same fp64
 * accumulators, same order, and the half-ulp squares are exact powers of two looked up by exponent.
 */
import type { Dtype } from '../dtype';
import { f16Table32 } from '../compute/ts/halfs';
import { halfUlpOfF32Bits } from './tolerance';

export interface RowStats {
  /** W' − c⊙W0 rounded to fp32, rows × cols (a view of the scratch buffer passed in). */
  D: Float32Array;
  mergedNorms: Float64Array;
  baseNorms: Float64Array;
  diffNorms: Float64Array;
  /** h_i in the merged tensor's dtype. */
  halfUlp: Float64Array;
}

/** Storage dtypes the 16-bit kernel reads without decoding first. */
export const isHalfDtype = (d: Dtype): d is 'F16' | 'BF16' => d === 'F16' || d === 'BF16';

let bf16Table: Uint32Array | undefined;
function bf16Table32(): Uint32Array {
  if (!bf16Table) {
    bf16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) bf16Table[h] = (h << 16) >>> 0;
  }
  return bf16Table;
}

/** fp32 values of all 65536 bit patterns of a 16-bit float dtype. */
function valueTable(dtype: 'F16' | 'BF16'): Float32Array {
  const bits = dtype === 'F16' ? f16Table32() : bf16Table32();
  return new Float32Array(bits.buffer, bits.byteOffset, bits.length);
}

const squareTables = new Map<string, Float64Array>();

/** Right shift that leaves a 16-bit float's sign and exponent bits: the ulp depends on nothing else. */
const exponentShift = (storage: 'F16' | 'BF16') => (storage === 'F16' ? 10 : 7);

/**
 * (ulp(v)/2)² in `dtype` indexed by the sign and exponent bits (`bits >>> exponentShift`) of the stored 16-bit values:
 * 64 (F16) or 512 (BF16) entries, small enough to stay in L1 next to the value tables.
 */
function halfUlpSquares16(storage: 'F16' | 'BF16', dtype: Dtype): Float64Array {
  const key = `16:${storage}:${dtype}`;
  let t = squareTables.get(key);
  if (!t) {
    const bits = storage === 'F16' ? f16Table32() : bf16Table32();
    const shift = exponentShift(storage);
    t = new Float64Array(65536 >>> shift);
    for (let e = 0; e < t.length; e++) {
      const half = halfUlpOfF32Bits(bits[e << shift]!, dtype);
      t[e] = half * half;
    }
    squareTables.set(key, t);
  }
  return t;
}

/** (ulp(v)/2)² in `dtype` indexed by the fp32 exponent byte of v. */
function halfUlpSquares32(dtype: Dtype): Float64Array {
  const key = `32:${dtype}`;
  let t = squareTables.get(key);
  if (!t) {
    t = new Float64Array(256);
    for (let e = 0; e < 256; e++) {
      const half = halfUlpOfF32Bits(e << 23, dtype);
      t[e] = half * half;
    }
    squareTables.set(key, t);
  }
  return t;
}

function alloc(rows: number, cols: number, scratch: Float32Array | undefined) {
  const n = rows * cols;
  return {
    D: scratch && scratch.length >= n ? scratch.subarray(0, n) : new Float32Array(n),
    mergedNorms: new Float64Array(rows),
    baseNorms: new Float64Array(rows),
    diffNorms: new Float64Array(rows),
    halfUlp: new Float64Array(rows),
  };
}

/**
 * Both tensors stored as 16-bit floats (F16/BF16, not necessarily the same), c = 1: reads the stored halves directly.
 * `mergedDtype` is the dtype whose ulp bounds the merged values' rounding (the merged tensor's storage dtype).
 */
export function rowStats16(
  merged: Uint16Array, mergedStorage: 'F16' | 'BF16', base: Uint16Array, baseStorage: 'F16' | 'BF16',
  rows: number, cols: number, mergedDtype: Dtype, scratch?: Float32Array,
): RowStats {
  const r = alloc(rows, cols, scratch);
  const vm = valueTable(mergedStorage);
  const vb = valueTable(baseStorage);
  const H = halfUlpSquares16(mergedStorage, mergedDtype);
  const sh = exponentShift(mergedStorage);
  // Even rows of 4-byte aligned halves are read two at a time (~15 % faster: half the loads and bounds checks).
  if (cols % 2 === 0 && merged.byteOffset % 4 === 0 && base.byteOffset % 4 === 0) {
    pairs(new Uint32Array(merged.buffer, merged.byteOffset, merged.length >>> 1), new Uint32Array(base.buffer, base.byteOffset, base.length >>> 1), rows, cols >>> 1, r, vm, vb, H, sh);
    return r;
  }
  const { D } = r;
  for (let i = 0; i < rows; i++) {
    let am = 0, ab = 0, ad = 0, ah = 0;
    const end = (i + 1) * cols;
    for (let k = i * cols; k < end; k++) {
      const u = merged[k]!;
      const a = vm[u]!;
      const b = vb[base[k]!]!;
      const d = Math.fround(a - b);
      D[k] = d;
      am += a * a;
      ab += b * b;
      ad += d * d;
      ah += H[u >>> sh]!;
    }
    r.mergedNorms[i] = Math.sqrt(am);
    r.baseNorms[i] = Math.sqrt(ab);
    r.diffNorms[i] = Math.sqrt(ad);
    r.halfUlp[i] = Math.sqrt(ah);
  }
  return r;
}

/** rowStats16 over pairs of halves (little-endian: the low half comes first); same sums in the same order. */
function pairs(m32: Uint32Array, b32: Uint32Array, rows: number, half: number, r: RowStats, vm: Float32Array, vb: Float32Array, H: Float64Array, sh: number): void {
  const { D } = r;
  for (let i = 0; i < rows; i++) {
    let am = 0, ab = 0, ad = 0, ah = 0;
    const end = (i + 1) * half;
    for (let k = i * half; k < end; k++) {
      const u = m32[k]!;
      const w = b32[k]!;
      const u0 = u & 0xffff, u1 = u >>> 16;
      const a0 = vm[u0]!, b0 = vb[w & 0xffff]!;
      const d0 = Math.fround(a0 - b0);
      D[2 * k] = d0;
      am += a0 * a0;
      ab += b0 * b0;
      ad += d0 * d0;
      ah += H[u0 >>> sh]!;
      const a1 = vm[u1]!, b1 = vb[w >>> 16]!;
      const d1 = Math.fround(a1 - b1);
      D[2 * k + 1] = d1;
      am += a1 * a1;
      ab += b1 * b1;
      ad += d1 * d1;
      ah += H[u1 >>> sh]!;
    }
    r.mergedNorms[i] = Math.sqrt(am);
    r.baseNorms[i] = Math.sqrt(ab);
    r.diffNorms[i] = Math.sqrt(ad);
    r.halfUlp[i] = Math.sqrt(ah);
  }
}

/** fp32 values (any storage dtype, decoded), with an optional DoRA factor c per row. */
export function rowStats32(
  merged: Float32Array, base: Float32Array, rows: number, cols: number, mergedDtype: Dtype,
  rowFactor: Float64Array | null = null, scratch?: Float32Array,
): RowStats {
  const r = alloc(rows, cols, scratch);
  const { D } = r;
  const bits = new Uint32Array(merged.buffer, merged.byteOffset, merged.length);
  const H = halfUlpSquares32(mergedDtype);
  for (let i = 0; i < rows; i++) {
    const c = rowFactor ? rowFactor[i]! : 1;
    let am = 0, ab = 0, ad = 0, ah = 0;
    const end = (i + 1) * cols;
    for (let k = i * cols; k < end; k++) {
      const a = merged[k]!;
      const b = base[k]!;
      const d = Math.fround(a - c * b);
      D[k] = d;
      am += a * a;
      ab += b * b;
      ad += d * d;
      ah += H[(bits[k]! >>> 23) & 0xff]!;
    }
    r.mergedNorms[i] = Math.sqrt(am);
    r.baseNorms[i] = Math.sqrt(ab);
    r.diffNorms[i] = Math.sqrt(ad);
    r.halfUlp[i] = Math.sqrt(ah);
  }
  return r;
}
