// Our fp16/bf16 conversions against independent float64 definitions (value = ±2^e·(1+m/2^k), nearest with ties to
// even found by search), on every fp16 value and on the adversarial set used to verify ORT's Cast.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bitsToF32, decodeBf16, decodeF16, encodeBf16, encodeF16, f16ToF32Bits, f32BitsToBf16, f32BitsToF16, f32ToBits,
} from '../../../src/core/compute/ts/halfs';
import { adversarialF32Bits } from '../../../src/core/compute/ort/castCheck';

/** fp16 value from the IEEE definition, in float64. */
function f16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** -24;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

// Sorted non-negative finite fp16 values; index = bit pattern.
const POS16 = Array.from({ length: 0x7c00 }, (_, h) => f16Value(h));

/** Nearest fp16 by binary search, ties to the even pattern, overflow per IEEE (≥ 65520 → Inf). */
function refF16(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a >= 65520) return sign | 0x7c00;
  let lo = 0, hi = POS16.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (POS16[mid]! <= a) lo = mid; else hi = mid;
  }
  if (a >= POS16[hi]!) lo = hi;
  const up = Math.min(lo + 1, POS16.length - 1);
  const dLo = a - POS16[lo]!, dUp = POS16[up]! - a;
  const h = dLo < dUp ? lo : dUp < dLo ? up : lo % 2 === 0 ? lo : up;
  return sign | h;
}

/** Nearest bf16: bf16 values near v are multiples of 2^(e-7); round to nearest, ties to even multiple. */
function refBf16(v: number): number {
  if (Number.isNaN(v)) return 0x7fc0;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a === Infinity) return sign | 0x7f80;
  if (a === 0) return sign;
  const e = Math.max(Math.floor(Math.log2(a)), -126);
  const e2 = 2 ** e <= a ? e : e - 1; // guard log2 rounding
  const step = 2 ** (Math.max(e2, -126) - 7);
  let q = a / step; // exact in float64
  const f = Math.floor(q);
  q = q - f > 0.5 ? f + 1 : q - f < 0.5 ? f : f % 2 === 0 ? f : f + 1;
  const r = q * step;
  if (r >= 2 ** 128) return sign | 0x7f80;
  return sign | (f32ToBits(r) >>> 16);
}

test('fp16 → fp32 is exact for all 65536 patterns', () => {
  for (let h = 0; h < 65536; h++) {
    const want = f16Value(h);
    const got = bitsToF32(f16ToF32Bits(h));
    if (Number.isNaN(want)) assert.ok(Number.isNaN(got), `0x${h.toString(16)}`);
    else assert.ok(Object.is(got, want), `0x${h.toString(16)}: ${got} vs ${want}`);
  }
});

test('fp32 → fp16 is round-to-nearest-even on ties, subnormals, overflow and random bits', () => {
  const bits = adversarialF32Bits();
  let checked = 0;
  for (const b of bits) {
    const want = refF16(bitsToF32(b));
    const got = f32BitsToF16(b);
    if ((want & 0x7fff) > 0x7c00) assert.ok((got & 0x7fff) > 0x7c00, `NaN 0x${b.toString(16)}`);
    else assert.equal(got, want, `0x${b.toString(16)} (${bitsToF32(b)}): got 0x${got.toString(16)}, want 0x${want.toString(16)}`);
    checked++;
  }
  assert.ok(checked > 200_000);
});

test('fp32 → bf16 is round-to-nearest-even; bf16 → fp32 exact', () => {
  const bits = adversarialF32Bits();
  const extra: number[] = [];
  for (let i = 0; i < 65536; i += 7) extra.push((i << 16) >>> 0, ((i << 16) | 0x8000) >>> 0, ((i << 16) | 0x8001) >>> 0, ((i << 16) | 0x7fff) >>> 0);
  for (const b of [...bits, ...extra]) {
    const v = bitsToF32(b);
    const want = refBf16(v);
    const got = f32BitsToBf16(b);
    if (Number.isNaN(v)) assert.ok((got & 0x7fff) > 0x7f80);
    else assert.equal(got, want, `0x${b.toString(16)} (${v}): got 0x${got.toString(16)}, want 0x${want.toString(16)}`);
  }
  const src = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const out = new Uint32Array(65536);
  decodeBf16(src, out);
  for (let i = 0; i < 65536; i++) assert.equal(out[i], (i * 65536) >>> 0);
});

test('array codecs round-trip every fp16/bf16 pattern (NaN stays NaN)', () => {
  const src = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const wide = new Uint32Array(65536);
  const back = new Uint16Array(65536);
  decodeF16(src, wide);
  encodeF16(wide, back);
  for (let i = 0; i < 65536; i++) {
    if ((i & 0x7fff) > 0x7c00) assert.ok((back[i]! & 0x7fff) > 0x7c00);
    else assert.equal(back[i], i);
  }
  decodeBf16(src, wide);
  encodeBf16(wide, back);
  for (let i = 0; i < 65536; i++) {
    if ((i & 0x7fff) > 0x7f80) assert.ok((back[i]! & 0x7fff) > 0x7f80);
    else assert.equal(back[i], i);
  }
});
