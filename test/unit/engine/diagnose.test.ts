import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeScale, diagnoseShape, diagnoseUpdate, type DiagnoseInput } from '../../../src/core/engine/diagnose';
import { Xoshiro128 } from '../../../src/core/engine/rng';
import { halfUlpRowNorms, roundToDtype, ulp } from '../../../src/core/engine/tolerance';

/** U = X·Y (rows × cols, rank r) and a D built from it by `make`, F32 rounding noise. */
function setup(rows: number, cols: number, r: number, make: (U: Float32Array) => Float32Array, extra: Partial<DiagnoseInput> = {}): DiagnoseInput {
  const rng = new Xoshiro128(rows * 31 + cols, 'diag');
  const X = Array.from({ length: rows * r }, () => rng.nextNormal());
  const Y = Array.from({ length: r * cols }, () => rng.nextNormal());
  const U = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) {
    let s = 0;
    for (let k = 0; k < r; k++) s += X[i * r + k]! * Y[k * cols + j]!;
    U[i * cols + j] = s;
  }
  const D = make(U);
  const halfUlp = Float32Array.from(D, (v) => ulp(v, 'F32') / 2);
  return { D, U, rows, cols, halfUlp, scaling: 2, alpha: 16, r: 8, scalingRule: 'alpha/r', enableLora: null, outputAxis: 'rows', fanInFanOut: false, ...extra };
}

describe('diagnoseUpdate (pure)', () => {
  it('not merged', () => {
    const d = diagnoseUpdate(setup(6, 5, 2, (U) => new Float32Array(U.length)));
    assert.equal(d.code, 'not-merged');
    assert.equal(d.sentence, 'not merged (merged weights equal the base)');
  });

  it('k = 2 names both merged twice and α doubled; k = 4 likewise', () => {
    const d = diagnoseUpdate(setup(6, 5, 2, (U) => U.map((u) => 4 * u)));
    assert.equal(d.code, 'twice');
    assert.match(d.sentence, /^merged twice, or merged with scaling 2× the config's \(α=32 was used, config says 16\)$/);
    assert.equal(d.estimatedScaling, 4);
    const d4 = diagnoseUpdate(setup(6, 5, 2, (U) => U.map((u) => 8 * u)));
    assert.match(d4.sentence, /^merged 4 times, or merged with scaling 4× the config's \(α=64 was used/);
  });

  it('r = 16: α/√r vs α/r is a factor 4, and both readings are given', () => {
    const d = diagnoseUpdate(setup(6, 5, 2, (U) => U.map((u) => 8 * u), { r: 16 }));
    assert.match(d.sentence, /α=64 was used, config says 16\); or α\/√r \(rsLoRA\) was used where the config gives α\/r/);
  });

  it('an odd scale gives α·k', () => {
    const d = diagnoseUpdate(setup(6, 5, 2, (U) => U.map((u) => 3 * 1.3 * u)));
    assert.equal(d.code, 'scaling');
    assert.match(d.sentence, /^merged with scaling 3\.9, 1\.95× the config's 2 \(α=31\.2 was used, config says 16\)$/);
  });

  it('subtracted', () => {
    assert.equal(diagnoseUpdate(setup(6, 5, 2, (U) => U.map((u) => -2 * u))).code, 'sign');
  });

  it('transposed square update', () => {
    const d = diagnoseUpdate(setup(7, 7, 2, (U) => {
      const T = new Float32Array(U.length);
      for (let i = 0; i < 7; i++) for (let j = 0; j < 7; j++) T[i * 7 + j] = 2 * U[j * 7 + i]!;
      return T;
    }, { fanInFanOut: true }));
    assert.equal(d.code, 'transposed');
    assert.match(d.sentence, /the config says fan_in_fan_out=true/);
  });

  it('mask blocks along columns (fan_in_fan_out storage)', () => {
    // 4 rows (inputs) × 9 cols (3 blocks of 3 outputs); config enables blocks 0 and 2, the update landed in 0 and 1.
    const d = diagnoseUpdate(setup(4, 9, 2, (U) => {
      const D = new Float32Array(U.length);
      for (let i = 0; i < 4; i++) for (let j = 0; j < 3; j++) {
        D[i * 9 + j] = 2 * U[i * 9 + j]!;
        D[i * 9 + 3 + j] = 2 * U[i * 9 + 6 + j]!;
      }
      return D;
    }, { enableLora: [true, false, true], outputAxis: 'cols' }));
    // U itself must be zero in the disabled block for a real layer; here it is not, so only the D side matters.
    assert.equal(d.code, 'mask');
    assert.match(d.sentence, /update found in block k/);
    assert.match(d.sentence, /none in enabled block v; config enables q,v/);
  });

  it('a corrupted column is located', () => {
    const d = diagnoseUpdate(setup(40, 30, 3, (U) => {
      const D = U.map((u) => 2 * u);
      for (let i = 0; i < 40; i++) D[i * 30 + 11] = D[i * 30 + 11]! + 5;
      return D;
    }));
    assert.equal(d.code, 'outside');
    assert.match(d.sentence, /in column 11 \(max \|residual\| 5 at row \d+, col 11\)/);
    assert.ok(Math.abs(d.estimatedScaling! - 2) < 1e-6);
  });

  it('rounding only: a 16-bit rounding of ΔW judged at F32', () => {
    const inp = setup(16, 16, 2, (U) => roundToDtype(U.map((u) => 2 * u), 'BF16'));
    const d = diagnoseUpdate(inp);
    assert.equal(d.code, 'rounding');
    assert.match(d.sentence, /^rounding only/);
  });

  it('an unrelated change is a mismatch', () => {
    const rng = new Xoshiro128(9, 'x');
    const d = diagnoseUpdate(setup(20, 20, 2, (U) => U.map(() => rng.nextNormal())));
    assert.equal(d.code, 'mismatch');
  });

  it('non-finite first', () => {
    const d = diagnoseUpdate(setup(3, 4, 1, (U) => { const D = U.slice(); D[6] = Infinity; return D; }));
    assert.equal(d.code, 'non-finite');
    assert.match(d.sentence, /row 1, col 2/);
  });

  it('shape: transposed vs other', () => {
    assert.equal(diagnoseShape([4, 6], [6, 4], true).code, 'transposed');
    assert.equal(diagnoseShape([4, 6], [4, 7], false).code, 'shape');
  });

  it('describeScale without α says only the scale', () => {
    const d = describeScale(0.3, 0.6, { scaling: 2, alpha: null, r: 8, scalingRule: 'alpha/r' });
    assert.equal(d.sentence, "merged with scaling 0.6, 0.3× the config's 2");
  });
});

describe('tolerance building blocks', () => {
  it('ulp and rounding per dtype', () => {
    assert.equal(ulp(1, 'F32'), 2 ** -23);
    assert.equal(ulp(1, 'F16'), 2 ** -10);
    assert.equal(ulp(1, 'BF16'), 2 ** -7);
    assert.equal(ulp(0, 'F16'), 2 ** -24); // subnormal spacing
    assert.equal(ulp(1.5, 'BF16'), 2 ** -7);
    const v = Float32Array.of(1 + 2 ** -11, 1 + 3 * 2 ** -11, 65519, 65520, -3.5e-8, 1 + 2 ** -8 + 2 ** -20);
    roundToDtype(v, 'F16');
    assert.deepEqual([...v], [1, 1 + 2 ** -9, 65504, Infinity, -(2 ** -24), 1 + 2 ** -8]);
    const b = Float32Array.of(1 + 2 ** -8, 1 + 3 * 2 ** -8);
    roundToDtype(b, 'BF16');
    assert.deepEqual([...b], [1, 1 + 2 ** -6]);
    const h = halfUlpRowNorms(Float32Array.of(1, 1, 2, 2), 2, 2, 'F16');
    assert.equal(h[0], Math.sqrt(2) * 2 ** -11);
    assert.equal(h[1], Math.sqrt(2) * 2 ** -10);
  });
});

describe('seeded probes', () => {
  it('xoshiro128** streams are reproducible, label-separated, and standard normal', async () => {
    const { gaussianProbes, probeTokenIds } = await import('../../../src/core/engine/rng');
    assert.deepEqual(gaussianProbes(0, 'a', 4, 8), gaussianProbes(0, 'a', 4, 8));
    assert.notDeepEqual(gaussianProbes(0, 'a', 4, 8), gaussianProbes(0, 'b', 4, 8));
    assert.notDeepEqual(gaussianProbes(0, 'a', 4, 8), gaussianProbes(1, 'a', 4, 8));
    const x = gaussianProbes(3, 'stats', 200, 100);
    let m = 0, v = 0;
    for (const t of x) m += t;
    m /= x.length;
    for (const t of x) v += (t - m) ** 2;
    v /= x.length;
    assert.ok(Math.abs(m) < 0.02 && Math.abs(v - 1) < 0.03, `mean ${m} var ${v}`);
    const ids = probeTokenIds(0, 'emb', 1000, 97);
    assert.ok(ids.every((i) => i >= 0 && i < 97));
    assert.ok(new Set(ids).size > 90);
  });
});
