/** The pure sentences for replaced tensors and lora_B.bias additions, on constructed mistakes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diagnoseBiasAdd, diagnoseReplaced } from '../../../src/core/engine/diagnose';

describe('diagnoseReplaced', () => {
  const base = { n: 10, differ: 3, worst: 0.5, at: 4, equalsBase: false, nonFiniteAt: null };
  it('names the three outcomes', () => {
    assert.equal(diagnoseReplaced({ ...base, equalsBase: true }).code, 'not-replaced');
    assert.match(diagnoseReplaced({ ...base, nonFiniteAt: 2 }).sentence, /non-finite .* element 2/);
    assert.equal(diagnoseReplaced(base).sentence, "replaced with something else: 3 of 10 values differ from the adapter's tensor (max |diff| 0.5 at element 4)");
  });
});

describe('diagnoseBiasAdd', () => {
  const U = Float64Array.from({ length: 8 }, (_, i) => Math.sin(i + 1));
  const halfUlp = new Float64Array(8).fill(2 ** -25);
  const inp = (k: number, noise = 0) => ({
    D: Float64Array.from(U, (u, i) => k * 2 * u + noise * Math.cos(7 * i)), U, halfUlp, scaling: 2, alpha: 16, r: 8, scalingRule: 'alpha/r' as const,
  });
  it('not added, subtracted, scaled, mismatched', () => {
    assert.equal(diagnoseBiasAdd(inp(0)).sentence, 'lora_B.bias not added (the merged bias equals the base bias)');
    const neg = diagnoseBiasAdd(inp(-1));
    assert.match(neg.sentence, /^lora_B\.bias added with factor -2 instead of 2: the update was subtracted/);
    assert.ok(Math.abs(neg.estimatedScaling! + 2) < 1e-12);
    assert.match(diagnoseBiasAdd(inp(0.5)).sentence, /^lora_B\.bias added with factor 1 instead of 2/);
    assert.equal(diagnoseBiasAdd(inp(0, 1)).code, 'mismatch');
    assert.match(diagnoseBiasAdd(inp(0, 1)).sentence, /^the merged bias does not match base bias \+ s·lora_B\.bias/);
  });
  it('non-finite values come first', () => {
    const x = inp(1);
    x.D[3] = NaN;
    assert.match(diagnoseBiasAdd(x).sentence, /non-finite .* element 3/);
  });
});
