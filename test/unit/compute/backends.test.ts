// TypeScript and onnxruntime backends against float64 references on random data, and against each other.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ComputeBackend, LowRankTerm } from '../../../src/core/compute/backend';
import { TsBackend } from '../../../src/core/compute/ts/backend';
import { OrtBackend } from '../../../src/core/compute/ort/backend';
import { defaultOrtLoader } from '../../../src/core/compute/ort/loader';
import { isLoraLensError } from '../../../src/core/errors';
import { exactElement, ordinals, randomStorage, rng, ulpOf, values, type Storage } from './helpers';

const backends: ComputeBackend[] = [new TsBackend()];
before(async () => {
  const ort = await defaultOrtLoader();
  backends.push(
    new OrtBackend(ort, 'cpu', { threads: 2 }), // fp16 through the Cast graph once the cast check passes
    new OrtBackend(ort, 'cpu', { threads: 2, nativeF16: false }), // fp16 widened and rounded in TypeScript
    new OrtBackend(ort, 'cpu', { threads: 2, chunkElements: 1100 }), // several row chunks, the last one shorter
    new OrtBackend(ort, 'cpu', { threads: 2, nativeF16: false, chunkElements: 2000 }),
  );
});
const VARIANTS = ['', '', '(ts-cast)', '(chunked)', '(ts-cast, chunked)'];
const label = (b: ComputeBackend) => `${b.name}${VARIANTS[backends.indexOf(b)] ?? ''}`;

const DTYPES: Storage[] = ['F32', 'F16', 'BF16'];
const SHAPES: Array<[number, number, number[]]> = [
  [1, 1, [1]], [5, 7, [3]], [17, 33, [5]], [64, 48, [8]], [4, 4, [4]], [9, 6, [3, 2, 0]], [3, 5, [0]], [6, 3, []],
];

function factors(rand: () => number, m: number, n: number, ranks: number[], amp: number, scales: number[]): LowRankTerm[] {
  return ranks.map((rank, t) => ({
    X: Float32Array.from({ length: m * rank }, () => (rand() * 2 - 1) * amp),
    Y: Float32Array.from({ length: rank * n }, () => (rand() * 2 - 1) * amp),
    rank,
    scale: scales[t % scales.length]!,
  }));
}

async function run(b: ComputeBackend, w: Uint8Array, dtype: Storage, m: number, n: number, terms: LowRankTerm[]): Promise<Uint8Array> {
  const out = new Uint8Array(w.length);
  await b.applyLowRank(w, dtype, m, n, terms, out);
  return out;
}

test('well-conditioned updates: every backend within 1 ulp (F16/BF16) / 1e-6 (F32) of float64, and of each other', async () => {
  const rand = rng(7);
  for (const dtype of DTYPES) {
    for (const [m, n, ranks] of SHAPES) {
      const w = randomStorage(dtype, m * n, rand, 1, 2, true);
      const R = Math.max(1, ranks.reduce((a, r) => a + r, 0));
      // |Σ scale·x·y| ≤ 0.25 < |w|/4: no cancellation, so 1 ulp is a fair bound
      const terms = factors(rand, m, n, ranks, 0.5, [1 / R, -0.5 / R]);
      const outs = await Promise.all(backends.map((b) => run(b, w, dtype, m, n, terms)));
      const wv = values(w, dtype);
      const got = outs.map((o) => values(o, dtype));
      const ord = outs.map((o) => ordinals(o, dtype));
      for (let i = 0; i < m * n; i++) {
        const exact = exactElement(wv[i]!, terms, n, Math.floor(i / n), i % n).value;
        const tol = dtype === 'F32' ? 1e-6 * Math.max(1, Math.abs(exact)) : ulpOf(exact, dtype);
        backends.forEach((b, bi) => {
          assert.ok(Math.abs(got[bi]![i]! - exact) <= tol, `${label(b)} ${dtype} ${m}×${n} r=${ranks} [${i}]: ${got[bi]![i]} vs exact ${exact}`);
          if (dtype !== 'F32') assert.ok(Math.abs(ord[bi]![i]! - ord[0]![i]!) <= 1, `${label(b)} vs ts ${dtype} [${i}]`);
        });
      }
    }
  }
});

test('cancelling updates: within 1 ulp plus the fp32 rounding bound (R+4)·2⁻²⁴·Σ|terms|', async () => {
  const rand = rng(11);
  for (const dtype of DTYPES) {
    for (const [m, n, ranks] of SHAPES) {
      const w = randomStorage(dtype, m * n, rand, 0.001, 1, true);
      const terms = factors(rand, m, n, ranks, 1, [3.7, -0.3]);
      const R = ranks.reduce((a, r) => a + r, 0);
      const outs = await Promise.all(backends.map((b) => run(b, w, dtype, m, n, terms)));
      const wv = values(w, dtype);
      const got = outs.map((o) => values(o, dtype));
      for (let i = 0; i < m * n; i++) {
        const e = exactElement(wv[i]!, terms, n, Math.floor(i / n), i % n);
        const tol = ulpOf(e.value, dtype) + (R + 4) * 2 ** -24 * e.magnitude;
        backends.forEach((b, bi) => {
          assert.ok(Math.abs(got[bi]![i]! - e.value) <= tol, `${label(b)} ${dtype} ${m}×${n} [${i}]: ${got[bi]![i]} vs ${e.value} (tol ${tol})`);
        });
      }
    }
  }
});

test('unaligned buffers and out aliasing w give the same bits as aligned, separate buffers', async () => {
  const rand = rng(3);
  // the larger shape spans several of MLAS's Gemm tiles, where in-place writes could overtake reads
  for (const [m, n] of [[13, 11], [70, 517]] as const) for (const dtype of DTYPES) {
    const w = randomStorage(dtype, m * n, rand, 0.5, 2, true);
    const terms = factors(rand, m, n, [4, 3], 0.5, [0.25, 2]);
    for (const b of backends) {
      const want = await run(b, w, dtype, m, n, terms);
      // w at an odd offset, out at another odd offset of a different buffer
      const wBuf = new Uint8Array(w.length + 5);
      wBuf.set(w, 1);
      const oBuf = new Uint8Array(w.length + 7);
      await b.applyLowRank(wBuf.subarray(1, 1 + w.length), dtype, m, n, terms, oBuf.subarray(3, 3 + w.length));
      assert.deepEqual(oBuf.subarray(3, 3 + w.length), want, `${label(b)} ${dtype} unaligned`);
      assert.deepEqual(wBuf.subarray(1, 1 + w.length), w, `${label(b)} ${dtype} input untouched`);
      // in place
      const inPlace = w.slice();
      await b.applyLowRank(inPlace, dtype, m, n, terms, inPlace);
      assert.deepEqual(inPlace, want, `${label(b)} ${dtype} in place`);
      // in place, unaligned
      const u = new Uint8Array(w.length + 1);
      u.set(w, 1);
      const uv = u.subarray(1);
      await b.applyLowRank(uv, dtype, m, n, terms, uv);
      assert.deepEqual(uv, want, `${label(b)} ${dtype} in place unaligned`);
    }
  }
});

test('no terms (or only rank-0 terms) copies w bit for bit, NaN and Inf included', async () => {
  const w = new Uint8Array(new Uint16Array([0x7e01, 0xfc00, 0x0001, 0x8000]).buffer);
  for (const b of backends) {
    for (const terms of [[], [{ X: new Float32Array(0), Y: new Float32Array(0), rank: 0, scale: 1 }]]) {
      assert.deepEqual(await run(b, w, 'F16', 2, 2, terms), w, label(b));
    }
  }
});

test('bad arguments are LoraLensErrors, not TypeErrors', async () => {
  for (const b of backends) {
    const w = new Uint8Array(16);
    const bad = [
      () => b.applyLowRank(w, 'F32', 2, 3, [], new Uint8Array(16)),
      () => b.applyLowRank(w, 'F32', 2, 2, [], new Uint8Array(12)),
      () => b.applyLowRank(w, 'F32', 2, 2, [{ X: new Float32Array(3), Y: new Float32Array(2), rank: 1, scale: 1 }], new Uint8Array(16)),
      () => b.applyLowRank(w, 'F64', 1, 2, [], new Uint8Array(16)),
      () => b.matmulNT(new Float32Array(5), 2, 3, new Float32Array(6), 2),
    ];
    for (const f of bad) await assert.rejects(f, (e: unknown) => isLoraLensError(e), label(b));
  }
});

test('matmulNT matches float64 dot products on both backends', async () => {
  const rand = rng(5);
  for (const [p, n, m] of [[1, 1, 1], [3, 5, 7], [16, 64, 33], [9, 130, 6]] as const) {
    const x = Float32Array.from({ length: p * n }, () => rand() * 2 - 1);
    const w = Float32Array.from({ length: m * n }, () => rand() * 2 - 1);
    const exact = new Float64Array(p * m);
    const tol = new Float64Array(p * m);
    for (let i = 0; i < p; i++) {
      for (let k = 0; k < m; k++) {
        let sum = 0, mag = 0;
        for (let j = 0; j < n; j++) {
          sum += x[i * n + j]! * w[k * n + j]!;
          mag += Math.abs(x[i * n + j]! * w[k * n + j]!);
        }
        exact[i * m + k] = sum;
        tol[i * m + k] = (n + 2) * 2 ** -24 * mag + 1e-30;
      }
    }
    for (const b of backends.slice(0, 2)) {
      const y = await b.matmulNT(x, p, n, w, m);
      assert.equal(y.length, p * m);
      for (let i = 0; i < p * m; i++) assert.ok(Math.abs(y[i]! - exact[i]!) <= tol[i]!, `${label(b)} ${p}×${n}×${m} [${i}]: ${y[i]} vs ${exact[i]}`);
    }
  }
});

test('the CPU provider passes the fp16 Cast check, so the one-graph fp16 path is in use', async () => {
  const check = await (backends[1] as OrtBackend).nativeF16();
  assert.equal(check.ok, true, check.detail);
  await Promise.all(backends.map((b) => b.dispose()));
});
