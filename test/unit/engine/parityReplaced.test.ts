/**
 * Parity beyond the low-rank layers: full tensors the adapter replaces (a SEQ_CLS `score.weight` head saved in the
 * adapter) and PEFT lora_bias additions (merged bias = base bias + s·lora_B.bias). A synthetic PEFT adapter written
 * here; merged checkpoints come from merge() and are then broken the ways merge scripts break them.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cmdParity } from '../../../src/cli/commands';
import { neverCancelled } from '../../../src/core/cancel';
import { disposeBackends } from '../../../src/core/compute/select';
import { fromF32, toF32 } from '../../../src/core/convert';
import { merge } from '../../../src/core/engine/merge';
import { parity } from '../../../src/core/engine/parity';
import type { ParityLayer, ParityReport } from '../../../src/core/reports';
import { readRaw, tempDir, writeRaw, type RawTensor } from './parityFixtures';
import { rng } from './mergeTestUtil';

after(() => disposeBackends());

const Q = 'model.layers.0.self_attn.q_proj';
const HEAD = 'score.weight';
const BIAS = `${Q}.bias`;
const R = 4;
const ALPHA = 8;
const S = ALPHA / R;

type Dt = 'F32' | 'F16';
const raw = (dtype: Dt, shape: number[], v: Float32Array): RawTensor => ({ dtype, shape, bytes: fromF32(v, dtype) });
const f32 = (t: RawTensor) => toF32(t.bytes, t.dtype as Dt).slice();

interface Setup {
  dir: string;
  base: string;
  adapter: string;
  /** Adapter tensors as written (fp32). */
  head: Float32Array;
  loraBias: Float32Array;
  baseBias: Float32Array;
  baseHead: Float32Array;
  merged: string;
}

/** Base (dtype `dt`) + a PEFT adapter (F32) with a LoRA on q_proj, lora_B.bias, and a saved score head; merged by merge(). */
async function setup(root: string, dt: Dt): Promise<Setup> {
  const dir = join(root, dt);
  mkdirSync(join(dir, 'adapter'), { recursive: true });
  const next = rng(dt === 'F32' ? 11 : 12);
  const rand = (n: number, scale = 1) => Float32Array.from({ length: n }, () => scale * next());
  const baseHead = rand(3 * 8);
  const baseBias = rand(16);
  const base = join(dir, 'base.safetensors');
  writeRaw(base, new Map([
    [`${Q}.weight`, raw(dt, [16, 8], rand(16 * 8))],
    [BIAS, raw(dt, [16], baseBias)],
    ['model.layers.0.self_attn.k_proj.weight', raw(dt, [16, 8], rand(16 * 8))],
    [HEAD, raw(dt, [3, 8], baseHead)],
  ]), { format: 'pt' });

  const head = rand(3 * 8, 2);
  const loraBias = rand(16, 0.5);
  const P = 'base_model.model.';
  writeRaw(join(dir, 'adapter', 'adapter_model.safetensors'), new Map([
    [`${P}${Q}.lora_A.weight`, raw('F32', [R, 8], rand(R * 8))],
    [`${P}${Q}.lora_B.weight`, raw('F32', [16, R], rand(16 * R))],
    [`${P}${Q}.lora_B.bias`, raw('F32', [16], loraBias)],
    [`${P}${HEAD}`, raw('F32', [3, 8], head)],
  ]), { format: 'pt' });
  writeFileSync(join(dir, 'adapter', 'adapter_config.json'), JSON.stringify({
    peft_type: 'LORA', task_type: 'SEQ_CLS', r: R, lora_alpha: ALPHA, target_modules: ['q_proj'], modules_to_save: ['score'],
    bias: 'none', lora_bias: true, fan_in_fan_out: false, use_rslora: false, use_dora: false,
  }));
  const merged = join(dir, 'merged.safetensors');
  await merge({ base, adapters: [{ path: join(dir, 'adapter') }], out: merged, device: 'ts' });
  return {
    dir, base, adapter: join(dir, 'adapter'), head, loraBias, merged,
    baseBias: toF32(fromF32(baseBias, dt), dt).slice(), baseHead: toF32(fromF32(baseHead, dt), dt).slice(),
  };
}

/** A copy of the merged file with some tensors changed (or dropped when `v` is null). */
function variant(s: Setup, name: string, edits: Record<string, RawTensor | null>): string {
  const { tensors, metadata } = readRaw(s.merged);
  for (const [k, v] of Object.entries(edits)) {
    if (v) tensors.set(k, v);
    else tensors.delete(k);
  }
  const out = join(s.dir, `${name}.safetensors`);
  writeRaw(out, tensors, metadata);
  return out;
}

const check = (s: Setup, merged?: string) => parity({ base: s.base, adapter: { path: s.adapter }, device: 'ts', ...(merged ? { merged } : {}) });
const row = (r: ParityReport, module: string) => {
  const l = r.layers.find((x) => x.module === module);
  assert.ok(l, `no row for ${module}: ${r.layers.map((x) => x.module).join(', ')}`);
  return l;
};

/** Only `bad` fails; a failing row reports a difference above its tolerance and a sentence. */
function onlyFails(r: ParityReport, bad: string): ParityLayer {
  assert.equal(r.pass, false);
  for (const l of r.layers) assert.equal(l.pass, l.module !== bad, `${l.module}: pass=${l.pass} (${l.diagnosis})`);
  const l = row(r, bad);
  assert.ok(l.maxAbsDiff > l.tolerance, `${l.maxAbsDiff} vs ${l.tolerance}`);
  assert.equal(typeof l.diagnosis, 'string');
  return l;
}

const maxAbs = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('parity checks replaced heads and lora_B.bias additions', () => {
  const t = tempDir();
  let s32: Setup;
  let s16: Setup;
  before(async () => {
    s32 = await setup(t.dir, 'F32');
    s16 = await setup(t.dir, 'F16');
  });
  after(() => t.cleanup());

  it('a correct merge passes, with one row per kind of check', async () => {
    for (const s of [s32, s16]) {
      for (const r of [await check(s, s.merged), await check(s)]) {
        assert.equal(r.pass, true, JSON.stringify(r.layers.filter((l) => !l.pass)));
        assert.deepEqual(r.layers.map((l) => [l.module, l.check ?? 'forward']).sort(), [[Q, 'forward'], [BIAS, 'bias'], [HEAD, 'replaced']]);
        const h = row(r, HEAD);
        assert.deepEqual([h.maxAbsDiff, h.tolerance, h.estimatedScaling, h.diagnosis], [0, 0, null, null]);
        const b = row(r, BIAS);
        assert.equal(b.expectedScaling, S);
        assert.ok(Math.abs(b.estimatedScaling! - S) < 1e-3, `s* ${b.estimatedScaling}`);
        assert.ok(b.maxAbsDiff <= b.tolerance && b.tolerance > 0);
      }
    }
    // The merged head is the adapter's, rounded once (RNE) to F16 — checked here without the engine's converter.
    const got = f32(readRaw(s16.merged).tensors.get(HEAD)!);
    got.forEach((v, i) => {
      const a = s16.head[i]!;
      const e = Math.abs(a) < 2 ** -14 ? 2 ** -24 : 2 ** (Math.floor(Math.log2(Math.abs(a))) - 10);
      assert.ok(Math.abs(v - a) <= e / 2, `${i}: ${v} vs ${a}`);
    });
  });

  it("head left as the base's: not replaced", async () => {
    for (const s of [s32, s16]) {
      const dt = s === s32 ? 'F32' : 'F16';
      const r = await check(s, variant(s, 'head-base', { [HEAD]: raw(dt, [3, 8], s.baseHead) }));
      const l = onlyFails(r, HEAD);
      assert.equal(l.check, 'replaced');
      assert.equal(l.diagnosis, "not replaced: still the base's tensor (modules_to_save / head saved in the adapter)");
      assert.equal(l.tolerance, 0);
      assert.equal(l.estimatedScaling, null);
      const want = Float32Array.from(s.head, (v) => toF32(fromF32(new Float32Array([v]), dt), dt)[0]!);
      assert.equal(l.maxAbsDiff, maxAbs(s.baseHead, want));
    }
  });

  it('head off by one ulp in one element, or truncated instead of rounded: replaced with something else', async () => {
    const h = s32.head.slice();
    h[5] = h[5]! + 2 ** (Math.floor(Math.log2(Math.abs(h[5]!))) - 23);
    const l = onlyFails(await check(s32, variant(s32, 'head-ulp', { [HEAD]: raw('F32', [3, 8], h) })), HEAD);
    assert.match(l.diagnosis!, /^replaced with something else: 1 of 24 values differ from the adapter's tensor \(max \|diff\| .* at element 5\)$/);

    // F16 merge that truncates the F32 head (round toward zero) instead of rounding to nearest.
    const bits = new Uint32Array(s16.head.slice().buffer);
    const trunc = new Uint16Array(bits.length);
    // Normal F16 range only (below it, flush to a signed zero: wrong as well).
    bits.forEach((b, i) => { trunc[i] = ((b >>> 16) & 0x8000) | ((b & 0x7fffffff) < 0x38800000 ? 0 : ((b & 0x7fffffff) - 0x38000000) >>> 13); });
    const differs = trunc.some((x, i) => x !== new Uint16Array(fromF32(s16.head, 'F16').buffer)[i]);
    assert.ok(differs, 'the synthetic head must have values where truncation and RNE differ');
    const l16 = onlyFails(await check(s16, variant(s16, 'head-trunc', { [HEAD]: { dtype: 'F16', shape: [3, 8], bytes: new Uint8Array(trunc.buffer) } })), HEAD);
    assert.match(l16.diagnosis!, /^replaced with something else/);
  });

  it('head missing or of another shape', async () => {
    const gone = onlyFails(await check(s32, variant(s32, 'head-gone', { [HEAD]: null })), HEAD);
    assert.match(gone.diagnosis!, /missing from the merged checkpoint \(score\.weight\)/);
    const wide = onlyFails(await check(s32, variant(s32, 'head-shape', { [HEAD]: raw('F32', [4, 8], new Float32Array(32)) })), HEAD);
    assert.match(wide.diagnosis!, /^shape mismatch: the merged tensor has shape \[4, 8\], the adapter's replacement \[3, 8\]/);
  });

  it('lora_B.bias not added', async () => {
    for (const s of [s32, s16]) {
      const dt = s === s32 ? 'F32' : 'F16';
      const l = onlyFails(await check(s, variant(s, 'bias-none', { [BIAS]: raw(dt, [16], s.baseBias) })), BIAS);
      assert.equal(l.check, 'bias');
      assert.match(l.diagnosis!, /^lora_B\.bias not added \(the merged bias equals the base bias\)$/);
      assert.ok(Math.abs(l.maxAbsDiff - S * maxAbs(s.loraBias, new Float32Array(16))) <= 1e-3 * l.maxAbsDiff);
    }
  });

  it('lora_B.bias added with the wrong factor: the estimated factor is named', async () => {
    const twice = Float32Array.from(s32.baseBias, (b, i) => b + 2 * S * s32.loraBias[i]!);
    const l = onlyFails(await check(s32, variant(s32, 'bias-twice', { [BIAS]: raw('F32', [16], twice) })), BIAS);
    assert.match(l.diagnosis!, /^lora_B\.bias added with factor 4 instead of 2: merged twice/);
    assert.ok(Math.abs(l.estimatedScaling! - 2 * S) < 1e-4);
    const unscaled = Float32Array.from(s32.baseBias, (b, i) => b + s32.loraBias[i]!);
    const u = onlyFails(await check(s32, variant(s32, 'bias-unscaled', { [BIAS]: raw('F32', [16], unscaled) })), BIAS);
    assert.match(u.diagnosis!, /^lora_B\.bias added with factor 1 instead of 2/);
  });

  it('an F64 head into F16: the direct rounding and the one through fp32 both pass, a third value does not', async () => {
    // x = 1 + 2⁻¹¹ + 2⁻⁴⁰: directly to F16 it rounds up (1 + 2⁻¹⁰); through fp32 it becomes a tie and rounds to 1.
    const head = Float64Array.from({ length: 24 }, (_, i) => (i - 12) / 8);
    head[0] = 1 + 2 ** -11 + 2 ** -40;
    const adapter = join(s16.dir, 'adapter-f64');
    mkdirSync(adapter, { recursive: true });
    const { tensors, metadata } = readRaw(join(s16.adapter, 'adapter_model.safetensors'));
    tensors.set(`base_model.model.${HEAD}`, { dtype: 'F64', shape: [3, 8], bytes: new Uint8Array(head.buffer) });
    writeRaw(join(adapter, 'adapter_model.safetensors'), tensors, metadata);
    writeFileSync(join(adapter, 'adapter_config.json'), readFileSync(join(s16.adapter, 'adapter_config.json')));
    const headBits = (first: number) => {
      const h = new Uint16Array(fromF32(Float32Array.from(head), 'F16').buffer);
      h[0] = first;
      return { dtype: 'F16', shape: [3, 8], bytes: new Uint8Array(h.buffer) };
    };
    const run = (name: string, first: number) =>
      parity({ base: s16.base, adapter: { path: adapter }, merged: variant(s16, name, { [HEAD]: headBits(first) }), device: 'ts' });
    for (const [name, bits] of [['direct', 0x3c01], ['via-f32', 0x3c00]] as const) {
      const r = await run(name, bits);
      assert.equal(r.pass, true, `${name}: ${JSON.stringify(r.layers.filter((l) => !l.pass))}`);
    }
    const l = onlyFails(await run('off', 0x3c02), HEAD);
    assert.match(l.diagnosis!, /^replaced with something else: 1 of 24 values differ .* at element 0\)$/);
    assert.equal(l.maxAbsDiff, 2 ** -10);
  });

  it('the CLI table marks the non-forward rows', async () => {
    const lines: string[] = [];
    const code = await cmdParity(['--base', s32.base, '--adapter', s32.adapter, '--merged', variant(s32, 'cli', { [HEAD]: raw('F32', [3, 8], s32.baseHead) }), '--device', 'ts'],
      { out: (x) => lines.push(x), cancel: neverCancelled, stderrIsTTY: false });
    assert.equal(code, 1);
    const text = lines.join("\n");
    assert.match(text, /score\.weight \(replaced\)\s.*FAIL\s+not replaced/);
    assert.match(text, /q_proj\.bias \(\+lora_B\.bias\)\s.*pass/);
    assert.match(text, new RegExp(`${Q.replace(/\./g, '\\.')}\\s.*pass`));
  });
});
