/**
 * Bulk fp16 / bf16 ⇄ fp32 codecs over bit patterns for the compute kernels. The scalar rules (round-to-nearest-even,
 * subnormals, overflow, NaN) live once, in core/convert.ts; this file only loops them over arrays, on raw bits so no
 * NaN payload is canonicalised by a trip through a JS number.
 */
import {
  f16ToF32Table,
  f16BitsToF32Bits,
  f32Bits,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  f32FromBits,
} from '../../convert';

export {
  f16ToF32Table as f16Table32,
  f16BitsToF32Bits as f16ToF32Bits,
  f32Bits as f32ToBits,
  f32FromBits as bitsToF32,
  f32BitsToF16Bits as f32BitsToF16,
  f32BitsToBf16Bits as f32BitsToBf16,
};

/** fp16 halves → fp32 bits into `out` (a Uint32Array view of the Float32Array the caller does math on). */
export function decodeF16(src: Uint16Array, out: Uint32Array, srcOff = 0, outOff = 0, count = src.length - srcOff): void {
  const t = f16ToF32Table();
  for (let i = 0; i < count; i++) out[outOff + i] = t[src[srcOff + i]!]!;
}

export function decodeBf16(src: Uint16Array, out: Uint32Array, srcOff = 0, outOff = 0, count = src.length - srcOff): void {
  for (let i = 0; i < count; i++) out[outOff + i] = (src[srcOff + i]! << 16) >>> 0;
}

export function encodeF16(src: Uint32Array, out: Uint16Array, srcOff = 0, outOff = 0, count = src.length - srcOff): void {
  for (let i = 0; i < count; i++) out[outOff + i] = f32BitsToF16Bits(src[srcOff + i]!);
}

export function encodeBf16(src: Uint32Array, out: Uint16Array, srcOff = 0, outOff = 0, count = src.length - srcOff): void {
  for (let i = 0; i < count; i++) out[outOff + i] = f32BitsToBf16Bits(src[srcOff + i]!);
}
