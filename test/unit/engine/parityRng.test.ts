/**
 * The parity probe streams are part of the contract: a `--seed 7` run must reproduce exactly, across versions.
 * Values pinned from the generator as first released (before the spare-normal rewrite).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gaussianProbes, probeTokenIds, Xoshiro128 } from '../../../src/core/engine/rng';

describe('seeded probe streams stay identical', () => {
  it('uint32 stream', () => {
    const r = new Xoshiro128(0, '');
    assert.deepEqual([r.nextU32(), r.nextU32(), r.nextU32(), r.nextU32()], [2040553127, 2671230994, 3535833209, 446703493]);
  });

  it('normals (odd count, so the spare is used and a new pair started)', () => {
    const r = new Xoshiro128(7, 'model.layers.0.self_attn.q_proj.weight');
    const got = Array.from({ length: 9 }, () => r.nextNormal());
    assert.deepEqual(got, [
      0.05869746307569607, 1.1782956551925585, -0.19032346291902574, 0.7494929398091037, 0.35248917234112803,
      0.3905061844439539, 0.5422790189498071, -1.7725131482475245, 2.0987110693593745,
    ]);
  });

  it('normals are Box–Muller pairs over the uniform stream', () => {
    const r = new Xoshiro128(123, 'lm_head');
    const u = new Xoshiro128(123, 'lm_head');
    for (let k = 0; k < 50; k++) {
      const u1 = u.nextOpen01();
      const u2 = u.nextOpen01();
      const rad = Math.sqrt(-2 * Math.log(u1));
      assert.equal(r.nextNormal(), rad * Math.cos(2 * Math.PI * u2));
      assert.equal(r.nextNormal(), rad * Math.sin(2 * Math.PI * u2));
    }
  });

  it('a spare normal survives interleaved integer draws', () => {
    const r = new Xoshiro128(-5, 'x');
    assert.deepEqual([r.nextNormal(), r.nextInt(1000), r.nextNormal(), r.nextNormal()], [1.355802851754762, 368, 1.1956292126257364, 0.5428159301863101]);
  });

  it('gaussianProbes and probeTokenIds', () => {
    assert.deepEqual(Array.from(gaussianProbes(0, 'score.weight', 1, 7)), [
      -0.2439137101173401, -0.9084855914115906, 0.6927014589309692, -0.7667385935783386, -1.1197597980499268, 1.063604712486267,
      0.4674281179904938,
    ]);
    assert.deepEqual(Array.from(probeTokenIds(3, 'wte', 5, 50257)), [3479, 2718, 26840, 46790, 986]);
  });
});
