import { DTYPE_BITS, type Dtype } from './dtype';
import { unsupportedError } from './errors';

/**
 * Bit-exact dtype conversions. All work goes through integer views so NaN payloads are never
 * canonicalised by a round trip through a JS number. Rounding is IEEE round-to-nearest-even,
 * matching numpy and torch; NaN stays NaN (payload kept where it fits, quiet bit set if it would vanish).
 */

export type WritableFloat = 'F32' | 'F16' | 'BF16' | 'F64';

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  // safetensors and torch storages are little-endian and every view below is host-endian.
  throw unsupportedError('BigEndianHost', 'LoRA Lens needs a little-endian machine');
}

const scratch = new DataView(new ArrayBuffer(8));

export function f32Bits(x: number): number {
  scratch.setFloat32(0, x, true);
  return scratch.getUint32(0, true);
}

export function f32FromBits(bits: number): number {
  scratch.setUint32(0, bits >>> 0, true);
  return scratch.getFloat32(0, true);
}

// ---------------------------------------------------------------- f16

function f16BitsToF32BitsSlow(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) {
    if (man === 0) return sign >>> 0;
    let e = 113;
    let m = man;
    while ((m & 0x400) === 0) {
      m <<= 1;
      e--;
    }
    return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
  }
  if (exp === 31) return (sign | 0x7f800000 | (man << 13)) >>> 0;
  return (sign | ((exp + 112) << 23) | (man << 13)) >>> 0;
}

let f16Table: Uint32Array | undefined;

/** 65536 entries, 256 KiB: a table lookup beats branching on subnormals. */
export function f16ToF32Table(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32BitsSlow(h);
  }
  return f16Table;
}

export function f16BitsToF32Bits(h: number): number {
  return f16ToF32Table()[h & 0xffff]!;
}

export function f16ToF32(h: number): number {
  return f32FromBits(f16BitsToF32Bits(h));
}

export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs >= 0x7f800000) {
    if (abs === 0x7f800000) return sign | 0x7c00;
    const payload = (abs >>> 13) & 0x3ff;
    return sign | 0x7c00 | (payload === 0 ? 0x200 : payload);
  }
  if (abs >= 0x38800000) {
    // normal range: rebias the exponent, then round the 13 dropped bits to nearest-even; a carry out
    // of the mantissa bumps the exponent, and out of the largest exponent lands exactly on Inf.
    if (abs >= 0x477ff000) return sign | 0x7c00;
    const rebiased = abs - 0x38000000;
    return sign | ((rebiased + 0xfff + ((rebiased >>> 13) & 1)) >>> 13);
  }
  if (abs <= 0x33000000) return sign; // ≤ 2^-25: rounds to zero (2^-25 itself ties to even 0)
  const e = abs >>> 23;
  const m = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - e; // value in units of 2^-24 is m >> shift
  const q = m >>> shift;
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return sign | (q + (rem > half || (rem === half && (q & 1) === 1) ? 1 : 0));
}

export function f32ToF16Bits(x: number): number {
  return f32BitsToF16Bits(f32Bits(x));
}

// ---------------------------------------------------------------- bf16

export function bf16BitsToF32Bits(h: number): number {
  return ((h & 0xffff) << 16) >>> 0;
}

export function bf16ToF32(h: number): number {
  return f32FromBits(bf16BitsToF32Bits(h));
}

export function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) {
    const top = x >>> 16;
    return (top & 0x7f) === 0 ? top | 0x40 : top;
  }
  return ((x >>> 0) + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

export function f32ToBf16Bits(x: number): number {
  return f32BitsToBf16Bits(f32Bits(x));
}

// ---------------------------------------------------------------- f8

type MiniKind = 'ieee' | 'fn' | 'fnuz';

function minifloatTable(expBits: number, manBits: number, bias: number, kind: MiniKind): Uint32Array {
  const table = new Uint32Array(256);
  const expMax = (1 << expBits) - 1;
  const manMax = (1 << manBits) - 1;
  for (let b = 0; b < 256; b++) {
    const neg = (b & 0x80) !== 0;
    const e = (b >>> manBits) & expMax;
    const m = b & manMax;
    let v: number;
    if (kind === 'fnuz' && b === 0x80) v = NaN;
    else if (kind === 'fn' && e === expMax && m === manMax) v = NaN;
    else if (kind === 'ieee' && e === expMax) v = m === 0 ? Infinity : NaN;
    else if (e === 0) v = m * 2 ** (1 - bias - manBits);
    else v = (1 + m / 2 ** manBits) * 2 ** (e - bias);
    table[b] = Number.isNaN(v) ? (neg ? 0xffc00000 : 0x7fc00000) : f32Bits(neg ? -v : v);
  }
  return table;
}

function e8m0Table(): Uint32Array {
  const table = new Uint32Array(256);
  for (let b = 0; b < 256; b++) table[b] = b === 255 ? 0x7fc00000 : f32Bits(2 ** (b - 127));
  return table;
}

const f8Tables = new Map<Dtype, Uint32Array>();

function f8Table(dtype: Dtype): Uint32Array {
  let t = f8Tables.get(dtype);
  if (!t) {
    switch (dtype) {
      case 'F8_E4M3': t = minifloatTable(4, 3, 7, 'fn'); break;
      case 'F8_E5M2': t = minifloatTable(5, 2, 15, 'ieee'); break;
      case 'F8_E4M3FNUZ': t = minifloatTable(4, 3, 8, 'fnuz'); break;
      case 'F8_E5M2FNUZ': t = minifloatTable(5, 2, 16, 'fnuz'); break;
      case 'F8_E8M0': t = e8m0Table(); break;
      default: throw unsupportedError('UnsupportedDtype', `no 8-bit float decoder for ${dtype}`);
    }
    f8Tables.set(dtype, t);
  }
  return t;
}

/** One F8 byte as an fp32 value (for display; LoRA Lens does no math in F8). */
export function f8ToF32(byte: number, dtype: Dtype): number {
  return f32FromBits(f8Table(dtype)[byte & 0xff]!);
}

// ---------------------------------------------------------------- int64 → f32

/** One rounding (RNE) from an exact 64-bit integer, as C's static_cast<float> does; Number() first would round twice. */
function bigIntToF32(v: bigint): number {
  const neg = v < 0n;
  let a = neg ? -v : v;
  if (a < 0x20000000000000n) return Math.fround(neg ? -Number(a) : Number(a));
  const bits = a.toString(2).length;
  const drop = BigInt(bits - 24);
  const q = a >> drop;
  const rem = a & ((1n << drop) - 1n);
  const half = 1n << (drop - 1n);
  a = q + (rem > half || (rem === half && (q & 1n) === 1n) ? 1n : 0n);
  const r = Number(a) * 2 ** Number(drop); // exact: ≤ 25 significant bits times a power of two
  return Math.fround(neg ? -r : r);
}

// ---------------------------------------------------------------- arrays

/** A view of `bytes` as T when its offset is aligned, else an aligned copy (typed arrays demand alignment). */
function aligned<T>(bytes: Uint8Array, elemBytes: number, make: (buf: ArrayBufferLike, off: number, n: number) => T): T {
  const n = Math.floor(bytes.byteLength / elemBytes);
  if (bytes.byteOffset % elemBytes === 0) return make(bytes.buffer, bytes.byteOffset, n);
  const copy = new Uint8Array(n * elemBytes);
  copy.set(bytes.subarray(0, n * elemBytes));
  return make(copy.buffer, 0, n);
}

function checkLength(bytes: Uint8Array, dtype: Dtype): void {
  const elemBytes = DTYPE_BITS[dtype] / 8;
  if (bytes.byteLength % elemBytes !== 0) {
    throw unsupportedError('InvalidTensorView', `${bytes.byteLength} bytes is not a whole number of ${dtype} values`);
  }
}

/**
 * Decode little-endian `bytes` of `dtype` to fp32: F32 as-is (a view that shares memory with `bytes`
 * when aligned), F16/BF16/F8 exact, F64 and 64-bit integers rounded once to nearest-even, BOOL as 0/1.
 */
export function toF32(bytes: Uint8Array, dtype: Dtype): Float32Array {
  switch (dtype) {
    case 'F32':
      checkLength(bytes, dtype);
      return aligned(bytes, 4, (b, o, n) => new Float32Array(b, o, n));
    case 'F16': {
      checkLength(bytes, dtype);
      const src = aligned(bytes, 2, (b, o, n) => new Uint16Array(b, o, n));
      const out = new Uint32Array(src.length);
      const t = f16ToF32Table();
      for (let i = 0; i < src.length; i++) out[i] = t[src[i]!]!;
      return new Float32Array(out.buffer);
    }
    case 'BF16': {
      checkLength(bytes, dtype);
      const src = aligned(bytes, 2, (b, o, n) => new Uint16Array(b, o, n));
      const out = new Uint32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = src[i]! << 16;
      return new Float32Array(out.buffer);
    }
    case 'F64': {
      checkLength(bytes, dtype);
      const src = aligned(bytes, 8, (b, o, n) => new Float64Array(b, o, n));
      const out = new Float32Array(src.length);
      out.set(src); // ToFloat32 is round-to-nearest-even
      return out;
    }
    case 'F8_E4M3': case 'F8_E5M2': case 'F8_E4M3FNUZ': case 'F8_E5M2FNUZ': case 'F8_E8M0': {
      const t = f8Table(dtype);
      const out = new Uint32Array(bytes.length);
      for (let i = 0; i < bytes.length; i++) out[i] = t[bytes[i]!]!;
      return new Float32Array(out.buffer);
    }
    case 'BOOL': {
      const out = new Float32Array(bytes.length);
      for (let i = 0; i < bytes.length; i++) out[i] = bytes[i] === 0 ? 0 : 1;
      return out;
    }
    case 'U8': return Float32Array.from(bytes);
    case 'I8': return Float32Array.from(new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length));
    case 'I16': case 'U16': case 'I32': case 'U32': {
      checkLength(bytes, dtype);
      const size = DTYPE_BITS[dtype] / 8;
      const src =
        dtype === 'I16' ? aligned(bytes, size, (b, o, n) => new Int16Array(b, o, n))
        : dtype === 'U16' ? aligned(bytes, size, (b, o, n) => new Uint16Array(b, o, n))
        : dtype === 'I32' ? aligned(bytes, size, (b, o, n) => new Int32Array(b, o, n))
        : aligned(bytes, size, (b, o, n) => new Uint32Array(b, o, n));
      const out = new Float32Array(src.length);
      out.set(src);
      return out;
    }
    case 'I64': case 'U64': {
      checkLength(bytes, dtype);
      const src = dtype === 'I64'
        ? aligned(bytes, 8, (b, o, n) => new BigInt64Array(b, o, n))
        : aligned(bytes, 8, (b, o, n) => new BigUint64Array(b, o, n));
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = bigIntToF32(src[i]!);
      return out;
    }
    case 'C64':
      throw unsupportedError('UnsupportedDtype', 'complex (C64) tensors have no single fp32 value per element');
    case 'F4': case 'F6_E2M3': case 'F6_E3M2':
      throw unsupportedError('UnsupportedDtype', `sub-byte ${dtype} tensors cannot be decoded`);
  }
}

/** Encode fp32 values as little-endian bytes of `dtype` (RNE for F16/BF16), into `out` when given. */
export function fromF32(values: Float32Array, dtype: WritableFloat, out?: Uint8Array): Uint8Array {
  const n = values.length;
  const bytes = DTYPE_BITS[dtype] / 8;
  const need = n * bytes;
  if (out && out.byteLength < need) {
    throw unsupportedError('InvalidTensorView', `output buffer holds ${out.byteLength} bytes, ${need} needed`);
  }
  const dst = out ? out.subarray(0, need) : new Uint8Array(need);
  const srcBits = new Uint32Array(values.buffer, values.byteOffset, n);
  const direct = dst.byteOffset % bytes === 0;
  const target = direct ? dst : new Uint8Array(need);
  switch (dtype) {
    case 'F32':
      new Uint32Array(target.buffer, target.byteOffset, n).set(srcBits);
      break;
    case 'F16': {
      const o = new Uint16Array(target.buffer, target.byteOffset, n);
      for (let i = 0; i < n; i++) o[i] = f32BitsToF16Bits(srcBits[i]!);
      break;
    }
    case 'BF16': {
      const o = new Uint16Array(target.buffer, target.byteOffset, n);
      for (let i = 0; i < n; i++) {
        const x = srcBits[i]!;
        o[i] = (x & 0x7fffffff) > 0x7f800000 ? f32BitsToBf16Bits(x) : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
      }
      break;
    }
    case 'F64':
      new Float64Array(target.buffer, target.byteOffset, n).set(values);
      break;
  }
  if (!direct) dst.set(target);
  return dst;
}

// ---------------------------------------------------------------- ulp

function orderedBits(x: number, dtype: WritableFloat): bigint | null {
  if (Number.isNaN(x)) return null;
  let bits: bigint;
  let signBit: bigint;
  switch (dtype) {
    case 'F64':
      scratch.setFloat64(0, x, true);
      bits = scratch.getBigUint64(0, true);
      signBit = 1n << 63n;
      break;
    case 'F32':
      bits = BigInt(f32Bits(x));
      signBit = 1n << 31n;
      break;
    case 'F16':
      bits = BigInt(f32ToF16Bits(x));
      signBit = 1n << 15n;
      break;
    case 'BF16':
      bits = BigInt(f32ToBf16Bits(x));
      signBit = 1n << 15n;
      break;
  }
  return bits & signBit ? -(bits & (signBit - 1n)) : bits;
}

/**
 * How many representable `dtype` values apart `a` and `b` are (0 for +0/-0; Infinity when exactly
 * one is NaN, 0 when both are). Values are first rounded to `dtype` (exact when they already are).
 */
export function ulpDistance(a: number, b: number, dtype: WritableFloat): number {
  const oa = orderedBits(a, dtype);
  const ob = orderedBits(b, dtype);
  if (oa === null || ob === null) return oa === ob ? 0 : Infinity;
  const d = oa > ob ? oa - ob : ob - oa;
  return Number(d);
}
