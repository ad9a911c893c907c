/**
 * fp16 / bf16 ⇄ fp32, bit-exact with torch/numpy: round-to-nearest-even, ties, subnormals, overflow to ±Inf, NaN stays
 * NaN (canonical quiet NaN with the sign kept on the way down, as torch does). Everything works on raw bit patterns so
 * no NaN payload is canonicalised by a trip through a JS number.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f32ToBits(v: number): number {
  f32[0] = v;
  return u32[0]!;
}

export function bitsToF32(bits: number): number {
  u32[0] = bits;
  return f32[0]!;
}

/** fp32 bit pattern → fp16 bit pattern, round-to-nearest-even. */
export function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const ax = x & 0x7fffffff;
  // Fast path: results that are normal fp16 values, below the 65520 tie that rounds up to Inf. Adding the rounding
  // bias to the rebiased bits lets a mantissa carry flow into the exponent.
  if (ax >= 0x38800000 && ax < 0x477ff000) return sign | ((ax - 0x38000000 + 0xfff + ((ax >>> 13) & 1)) >>> 13);
  const e = (x >>> 23) & 0xff;
  const m = x & 0x7fffff;
  if (e === 0xff) return m !== 0 ? sign | 0x7e00 : sign | 0x7c00;
  const he = e - 112; // rebias 127 → 15
  if (he >= 0x1f) return sign | 0x7c00;
  if (he <= 0) {
    // fp16 subnormal: value = M·2^(he-14) units of 2^-24, M the 24-bit significand
    if (he < -10) return sign; // below 2^-25: rounds to ±0
    const M = m | 0x800000;
    const shift = 14 - he;
    let h = M >>> shift;
    const rem = M & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) !== 0)) h++; // carry into the exponent gives the smallest normal
    return sign | h;
  }
  let h = sign | (he << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // a carry out of the mantissa is exactly right, up to Inf
  return h;
}

/** fp16 bit pattern → fp32 bit pattern (exact). */
export function f16ToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return (sign | 0x7f800000 | (m << 13)) >>> 0;
  if (e !== 0) return (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
  if (m === 0) return sign >>> 0;
  // subnormal: normalise
  let mm = m;
  let ee = 113;
  while ((mm & 0x400) === 0) {
    mm <<= 1;
    ee--;
  }
  return (sign | (ee << 23) | ((mm & 0x3ff) << 13)) >>> 0;
}

/** fp32 bit pattern → bf16 bit pattern, round-to-nearest-even; NaN → quiet NaN with its sign. */
export function f32BitsToBf16(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) & 0x8000) | 0x7fc0;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

let f16Table: Uint32Array | undefined;

/** All 65536 fp16 values as fp32 bits: a lookup is faster than the bit twiddling above. */
export function f16Table32(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32Bits(h);
  }
  return f16Table;
}

/** fp16 halves → fp32 bits into `out` (a Uint32Array view of the Float32Array the caller does math on). */
export function decodeF16(src: Uint16Array, out: Uint32Array, srcOff = 0, outOff = 0, count = src.length - srcOff): void {
  const t = f16Table32();
  for (let i = 0; i < count; i++) out[outOff + i] = t[src[srcOff + i]!]!;
}

export function decodeBf16(src: Uint16Array, out: Uint32Array, srcOff = 0, outOff = 0, count = src.length - srcOff): void {
  for (let i = 0; i < count; i++) out[outOff + i] = (src[srcOff + i]! << 16) >>> 0;
}

export function encodeF16(src: Uint32Array, out: Uint16Array, srcOff = 0, outOff = 0, count = src.length - srcOff): void {
  for (let i = 0; i < count; i++) out[outOff + i] = f32BitsToF16(src[srcOff + i]!);
}

export function encodeBf16(src: Uint32Array, out: Uint16Array, srcOff = 0, outOff = 0, count = src.length - srcOff): void {
  for (let i = 0; i < count; i++) out[outOff + i] = f32BitsToBf16(src[srcOff + i]!);
}
