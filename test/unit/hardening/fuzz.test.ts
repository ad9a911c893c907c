/**
 * A fixed-seed slice of the mutation fuzzer (test/fuzz/): a few thousand mutated fixtures must each end in a parse
 * or a typed LoraLensError naming the file, without untyped exceptions, runaway CPU, over-allocation or leaked
 * descriptors. The full runs (100 000+ cases) are `node --import tsx test/fuzz/fuzz.ts --cases N --seed S`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from '../../fuzz/run';

const SEED = 20250101;
const CASES = 2500;

test(`fuzz: ${CASES} mutated fixtures (seed ${SEED}) fail only with typed errors`, async () => {
  // CPU limit per case is generous here: it only catches runaway cases, never measures speed.
  const s = await runFuzz({ cases: CASES, seed: SEED, timeLimitMs: 10_000, hangMs: 60_000 });
  const report = s.failures
    .slice(0, 10)
    .map((f) => `case ${f.index} from ${f.seed} [${f.ops.join('; ')}]: ${f.reason}`)
    .join('\n');
  assert.equal(s.failures.length, 0, `fuzz failures (replay with --seed ${SEED} --only <case>):\n${report}`);
  // The mutations must actually reach the readers' deeper checks, not just trip the first one.
  const labels = Object.keys(s.outcomes);
  for (const expected of ['ok+adapter', 'format/InvalidOffset', 'format/DuplicateKey', 'format/PickleInvalid', 'security/UnsafeGlobal', 'format/ZipCorrupt']) {
    assert.ok(labels.includes(expected), `no case ended in ${expected}: ${labels.join(', ')}`);
  }
});
