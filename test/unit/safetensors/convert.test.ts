import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bf16BitsToF32Bits, f16BitsToF32Bits, f16ToF32, f32BitsToBf16Bits, f32BitsToF16Bits, f32Bits, f32FromBits,
  f8ToF32, fromF32, toF32, ulpDistance,
} from '../../../src/core/convert';
import { isLoraLensError } from '../../../src/core/errors';

// Independent references: plain float64 arithmetic, no bit tricks shared with the implementation.

function refF16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 31) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Round a float32 value to a float format with `mant` stored bits, min normal exponent `emin`, by RNE in float64. */
function refRound(x: number, mant: number, emin: number, maxFinite: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a === Infinity) return x;
  let e = emin;
  while (2 ** (e + 1) <= a) e++;
  const q = 2 ** (e - mant);
  const t = a / q;
  let r = Math.floor(t);
  const frac = t - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r++;
  const v = r * q > maxFinite ? Infinity : r * q;
  return x < 0 || Object.is(x, -0) ? -v : v;
}
const refToF16 = (x: number) => refRound(x, 10, -14, 65504);
const refToBf16 = (x: number) => refRound(x, 7, -126, (2 - 2 ** -7) * 2 ** 127);

function sameValue(actual: number, expected: number, what: string) {
  if (Number.isNaN(expected)) assert.ok(Number.isNaN(actual), `${what}: expected NaN, got ${actual}`);
  else assert.ok(Object.is(actual, expected), `${what}: expected ${expected}, got ${actual}`);
}

let seed = 0x12345678;
function rand32(): number {
  // xorshift32: deterministic, so a failure reproduces
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}

test('f16 → f32 matches the arithmetic definition for all 65536 patterns', () => {
  for (let h = 0; h < 65536; h++) sameValue(f16ToF32(h), refF16Value(h), `h=0x${h.toString(16)}`);
});

test('f16 → f32 → f16 is the identity on all 65536 patterns (NaN payloads included)', () => {
  for (let h = 0; h < 65536; h++) assert.equal(f32BitsToF16Bits(f16BitsToF32Bits(h)), h);
});

test('bf16 → f32 → bf16 is the identity on all 65536 patterns, and decoding is exact', () => {
  for (let h = 0; h < 65536; h++) {
    const bits = bf16BitsToF32Bits(h);
    assert.equal(f32BitsToBf16Bits(bits), h);
    // bf16 is the top half of an f32: the value is the f32 with 16 zero low bits
    const dv = new DataView(new ArrayBuffer(4));
    dv.setUint16(2, h, true);
    sameValue(f32FromBits(bits), dv.getFloat32(0, true), `bf16 0x${h.toString(16)}`);
  }
});

test('f32 → f16 rounds to nearest-even: every midpoint, its neighbours, and random values', () => {
  let checked = 0;
  for (let h = 0; h < 0x7c00; h++) {
    for (const s of [0, 0x8000]) {
      const lo = refF16Value(h | s);
      const hi = h + 1 === 0x7c00 ? (s ? -65536 : 65536) : refF16Value((h + 1) | s);
      const mid = (lo + hi) / 2; // exact in f32: one more bit than f16 holds
      assert.equal(Math.fround(mid), mid);
      const midBits = f32Bits(mid);
      for (const bits of [midBits - 1, midBits, midBits + 1]) {
        const x = f32FromBits(bits);
        sameValue(f16ToF32(f32BitsToF16Bits(bits)), refToF16(x), `x=${x}`);
        checked++;
      }
    }
  }
  for (let i = 0; i < 200_000; i++) {
    const bits = rand32();
    const x = f32FromBits(bits);
    sameValue(f16ToF32(f32BitsToF16Bits(bits)), refToF16(x), `bits=0x${bits.toString(16)}`);
  }
  assert.ok(checked > 190_000);
  // ties, spelled out: 2049 is halfway between 2048 and 2050 -> 2048 (even); 2051 -> 2052
  assert.equal(f16ToF32(f32BitsToF16Bits(f32Bits(2049))), 2048);
  assert.equal(f16ToF32(f32BitsToF16Bits(f32Bits(2051))), 2052);
  assert.equal(f32BitsToF16Bits(f32Bits(65520)), 0x7c00);
  assert.equal(f32BitsToF16Bits(f32Bits(2 ** -25)), 0);
  assert.equal(f32BitsToF16Bits(f32Bits(3 * 2 ** -26)), 1);
});

test('f32 → bf16 rounds to nearest-even, keeps Inf, subnormals and NaN', () => {
  for (let i = 0; i < 200_000; i++) {
    const bits = rand32();
    const x = f32FromBits(bits);
    sameValue(f32FromBits(bf16BitsToF32Bits(f32BitsToBf16Bits(bits))), refToBf16(x), `bits=0x${bits.toString(16)}`);
  }
  // exact ties on both parities, in the normal and subnormal ranges
  for (const base of [0x3f800000, 0x3f810000, 0x00010000, 0x00020000, 0x80030000]) {
    const tie = base + 0x8000;
    const expectUp = ((base >>> 16) & 1) === 1;
    assert.equal(f32BitsToBf16Bits(tie), (base >>> 16) + (expectUp ? 1 : 0));
  }
  assert.equal(f32BitsToBf16Bits(0x7f7fffff), 0x7f80); // max float rounds to Inf
  assert.ok(Number.isNaN(f32FromBits(bf16BitsToF32Bits(f32BitsToBf16Bits(0x7f800001)))));
});

test('toF32 / fromF32 arrays agree with the scalar paths, also at unaligned offsets', () => {
  const n = 4096;
  const f16 = new Uint16Array(n);
  for (let i = 0; i < n; i++) f16[i] = rand32() & 0xffff;
  const raw = new Uint8Array(f16.buffer);
  const unaligned = new Uint8Array(raw.length + 1).subarray(1);
  unaligned.set(raw);
  for (const bytes of [raw, unaligned]) {
    const out = toF32(bytes, 'F16');
    const outBits = new Uint32Array(out.buffer, out.byteOffset, n);
    for (let i = 0; i < n; i++) assert.equal(outBits[i], f16BitsToF32Bits(f16[i]!));
    const back = fromF32(out, 'F16', new Uint8Array(2 * n + 1).subarray(1));
    assert.deepEqual(Buffer.from(back), Buffer.from(raw));
  }
  const bfBytes = fromF32(toF32(raw, 'BF16'), 'BF16');
  assert.deepEqual(Buffer.from(bfBytes), Buffer.from(raw));
  const f64 = new Float64Array([1 + 2 ** -30, -3.5e38, 1e-50, NaN, 0.1, 1 + 2 ** -24, 1 + 3 * 2 ** -24]);
  const f32 = toF32(new Uint8Array(f64.buffer), 'F64');
  for (let i = 0; i < f64.length; i++) sameValue(f32[i]!, Math.fround(f64[i]!), `f64[${i}]`);
  const asF64 = toF32(fromF32(f32, 'F64'), 'F64');
  for (let i = 0; i < f64.length; i++) sameValue(asF64[i]!, f32[i]!, 'f32 -> f64 -> f32');
});

test('integer and bool dtypes convert with one rounding', () => {
  assert.deepEqual([...toF32(new Uint8Array([0, 1, 2, 255]), 'BOOL')], [0, 1, 1, 1]);
  assert.deepEqual([...toF32(new Uint8Array([0, 255]), 'U8')], [0, 255]);
  assert.deepEqual([...toF32(new Uint8Array([0x80, 0x7f]), 'I8')], [-128, 127]);
  assert.deepEqual([...toF32(new Uint8Array(new Int16Array([-32768, 7]).buffer), 'I16')], [-32768, 7]);
  assert.deepEqual([...toF32(new Uint8Array(new Int32Array([16777217, -5]).buffer), 'I32')], [16777216, -5]);
  // 2^60 + 2^36 + 1 lies just above an f32 tie; Number() first would land on the tie and round to even (2^60).
  const big = new BigInt64Array([2n ** 60n + 2n ** 36n + 1n, -(2n ** 60n + 2n ** 36n), 2n ** 53n + 1n]);
  const v = toF32(new Uint8Array(big.buffer), 'I64');
  assert.equal(v[0], 2 ** 60 + 2 ** 37);
  assert.equal(v[1], -(2 ** 60));
  assert.equal(v[2], 2 ** 53);
  assert.deepEqual([...toF32(new Uint8Array(new BigUint64Array([2n ** 64n - 1n]).buffer), 'U64')], [2 ** 64]);
});

test('F8 decoders: known values and the E5M2 = top byte of F16 identity', () => {
  assert.equal(f8ToF32(0x7e, 'F8_E4M3'), 448);
  assert.ok(Number.isNaN(f8ToF32(0x7f, 'F8_E4M3')));
  assert.equal(f8ToF32(0x01, 'F8_E4M3'), 2 ** -9);
  assert.equal(f8ToF32(0x08, 'F8_E4M3'), 2 ** -6);
  assert.equal(f8ToF32(0xb8, 'F8_E4M3'), -1);
  assert.equal(f8ToF32(0x7b, 'F8_E5M2'), 57344);
  assert.equal(f8ToF32(0x7c, 'F8_E5M2'), Infinity);
  assert.ok(Number.isNaN(f8ToF32(0x80, 'F8_E4M3FNUZ')));
  assert.equal(f8ToF32(0x7f, 'F8_E4M3FNUZ'), 240);
  assert.equal(f8ToF32(0x7f, 'F8_E5M2FNUZ'), 57344);
  assert.ok(Number.isNaN(f8ToF32(0x80, 'F8_E5M2FNUZ')));
  assert.equal(f8ToF32(127, 'F8_E8M0'), 1);
  assert.equal(f8ToF32(0, 'F8_E8M0'), 2 ** -127);
  assert.ok(Number.isNaN(f8ToF32(255, 'F8_E8M0')));
  const all = new Uint8Array(256).map((_, i) => i);
  const e5m2 = toF32(all, 'F8_E5M2');
  for (let b = 0; b < 256; b++) sameValue(e5m2[b]!, refF16Value(b << 8), `e5m2 ${b}`);
});

test('sub-byte and complex dtypes are refused as unsupported', () => {
  for (const d of ['F4', 'F6_E2M3', 'F6_E3M2', 'C64'] as const) {
    assert.throws(() => toF32(new Uint8Array(8), d), (e) => isLoraLensError(e) && e.kind === 'unsupported');
  }
});

test('ulpDistance counts representable steps', () => {
  assert.equal(ulpDistance(1, f16ToF32(0x3c01), 'F16'), 1);
  assert.equal(ulpDistance(0, -0, 'F16'), 0);
  assert.equal(ulpDistance(2 ** -24, -(2 ** -24), 'F16'), 2);
  assert.equal(ulpDistance(1, 1 + 2 ** -7, 'BF16'), 1);
  assert.equal(ulpDistance(1, 1 + 2 ** -23, 'F32'), 1);
  assert.equal(ulpDistance(1, 1 + 2 ** -52, 'F64'), 1);
  assert.equal(ulpDistance(NaN, 1, 'F32'), Infinity);
  assert.equal(ulpDistance(NaN, NaN, 'F32'), 0);
});
