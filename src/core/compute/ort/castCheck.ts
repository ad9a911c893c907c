/**
 * Whether a provider's Cast fp32→fp16 is round-to-nearest-even and fp16→fp32 exact, checked bit for bit against our
 * own conversions on the inputs where implementations differ: every fp16 value, every tie between neighbours and the
 * fp32 values either side of it, the subnormal and overflow boundaries, fp32 subnormals, Inf, NaN, and random bits.
 * A provider that flushes subnormals or truncates fails, and fp16 merges then round in TypeScript instead.
 */
import { bitsToF32, f16ToF32Bits, f32BitsToF16 } from '../ts/halfs';
import type { OrtModule, OrtSession } from './loader';

const isNaN16 = (h: number) => (h & 0x7fff) > 0x7c00;
const isNaN32 = (b: number) => (b & 0x7fffffff) > 0x7f800000;

export function adversarialF32Bits(): Uint32Array {
  const out: number[] = [];
  const push = (bits: number) => out.push(bits >>> 0, (bits | 0x80000000) >>> 0);
  for (let h = 0; h < 0x7c00; h++) {
    const lo = f16ToF32Bits(h);
    push(lo);
    // The next fp16 value above 65504 would be 2^16: its tie with 65504 (65520) is where rounding overflows to Inf.
    const hiValue = h === 0x7bff ? 65536 : bitsToF32(f16ToF32Bits(h + 1));
    const mid = (bitsToF32(lo) + hiValue) / 2; // exact: fp16 neighbours are 2^-24 apart at least
    const midBits = new Uint32Array(new Float32Array([mid]).buffer)[0]!;
    push(midBits - 1);
    push(midBits);
    push(midBits + 1);
  }
  for (const b of [0x7c00, 0x7e00, 0x7c01, 0x7fff]) push(f16ToF32Bits(b)); // Inf and NaNs as fp16 sees them
  const special = [
    0x00000001, 0x00000002, 0x007fffff, 0x00400000, 0x00800000, // fp32 subnormals and the smallest normal
    0x33000000, 0x33000001, 0x32ffffff, 0x33800000, 0x33c00000, // 2^-25 (tie to 0), around it, 2^-24, 1.5·2^-24
    0x477fe000, 0x477ff000, 0x477fefff, 0x477ff001, 0x47800000, // 65504, 65520 (tie to Inf), neighbours, 65536
    0x7f7fffff, 0x7f800000, 0x7fc00000, 0x7f800001, 0x7fffffff, // max, Inf, quiet and signalling NaNs
  ];
  for (const b of special) push(b);
  // Random bit patterns, from a fixed LCG so a failure is reproducible.
  let x = 0x12345678;
  for (let i = 0; i < 32768; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    push(x);
  }
  return Uint32Array.from(out);
}

export interface CastCheck {
  ok: boolean;
  /** mismatches / values checked, or the error that prevented the check */
  detail: string;
}

export async function checkCastF16(ort: OrtModule, session: OrtSession): Promise<CastCheck> {
  const bits = adversarialF32Bits();
  const input = new Float32Array(bits.buffer);
  const result = await session.run({ x: new ort.Tensor('float32', input, [input.length]) });
  const h = result.h!.data as Uint16Array;
  const back = new Uint32Array((result.back!.data as Float32Array).buffer, (result.back!.data as Float32Array).byteOffset, input.length);
  let bad = 0;
  let first = '';
  for (let i = 0; i < bits.length; i++) {
    const want = f32BitsToF16(bits[i]!);
    const got = h[i]!;
    const ok16 = got === want || (isNaN16(got) && isNaN16(want));
    const wantBack = f16ToF32Bits(got);
    const okBack = back[i] === wantBack || (isNaN32(back[i]!) && isNaN32(wantBack));
    if (!ok16 || !okBack) {
      if (!bad) first = `0x${bits[i]!.toString(16).padStart(8, '0')} → 0x${got.toString(16)} (RNE: 0x${want.toString(16)})`;
      bad++;
    }
  }
  return bad === 0
    ? { ok: true, detail: `${bits.length} adversarial values bit-identical` }
    : { ok: false, detail: `${bad} of ${bits.length} adversarial values differ, e.g. ${first}` };
}
