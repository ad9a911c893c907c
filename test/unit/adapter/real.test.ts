/** The third-party adapters in ../shared/fixtures/real, against what SOURCES.md states about each. */
import test from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadAdapter } from '../../../src/core/adapter/load';
import type { Adapter } from '../../../src/core/adapter/types';
import { hasReal, realDir, repoRoot, memCheckpoint } from './helpers';

const skip = hasReal ? false : 'shared real fixtures not present';

interface Expect {
  dir: string;
  file?: string;
  format: string;
  layers: number;
  r: number;
  alpha: number | null;
  targets: string[];
  fifo?: boolean;
  replaced?: string[];
  warnings?: string[];
}

// Values from SOURCES.md (r from shapes, α from config / the source repo's code).
const CASES: Expect[] = [
  { dir: 'peft-gpt2-seqcls', format: 'peft', layers: 12, r: 8, alpha: 8, targets: ['c_attn'], fifo: true, replaced: ['score.weight'] },
  { dir: 'peft-gpt2-bias-lora-only', format: 'peft', layers: 36, r: 4, alpha: 16, targets: ['c_attn', 'c_proj'], fifo: false,
    warnings: ['BiasLoraOnlyMissing', 'FanInFanOutOnConv1D', 'AmbiguousTargetSuffix'] },
  { dir: 'peft-bert-seqcls', format: 'peft', layers: 24, r: 8, alpha: 32, targets: ['query', 'value'], replaced: ['classifier.weight', 'classifier.bias'] },
  { dir: 'peft-vit-food101', format: 'peft', layers: 24, r: 16, alpha: 32, targets: ['query', 'value'], replaced: ['classifier.weight', 'classifier.bias'] },
  { dir: 'peft-whisper-small', format: 'peft', layers: 72, r: 8, alpha: 32, targets: ['q_proj', 'v_proj'] },
  { dir: 'peft-gemma3-270m', format: 'peft', layers: 72, r: 4, alpha: 16, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] },
  { dir: 'peft-qwen2.5-0.5b', format: 'peft', layers: 48, r: 8, alpha: 16, targets: ['q_proj', 'v_proj'] },
  { dir: 'peftbin-gpt2-seqcls', format: 'peft', layers: 24, r: 8, alpha: 32, targets: ['attn.c_attn', 'attn.c_proj'], fifo: true, replaced: ['score.weight'] },
  { dir: 'diffusers-sd21-bf16', format: 'diffusers', layers: 128, r: 4, alpha: 4, targets: ['to_q', 'to_k', 'to_v', 'to_out.0'] },
  { dir: 'loralib-cnclip-bert', file: 'lora_weights.pt', format: 'loralib', layers: 24, r: 16, alpha: null, targets: ['query', 'value'] },
  { dir: 'loralib-gptneox-mergedlinear', file: 'lora.pth', format: 'loralib', layers: 24, r: 4, alpha: null, targets: ['query_key_value'] },
];

const lastSeg = (targets: string[], m: string) => targets.find((t) => m === t || m.endsWith(`.${t}`));

for (const c of CASES) {
  test(`real ${c.dir}: r, α, targets, heads and warnings as SOURCES.md states`, { skip }, async () => {
    const a = await loadAdapter(join(realDir, c.dir, c.file ?? ''));
    try {
      assert.equal(a.format, c.format);
      assert.equal(a.layers.length, c.layers);
      for (const L of a.layers) {
        assert.equal(L.r, c.r, L.module);
        assert.equal(L.alpha, c.alpha, L.module);
        assert.equal(L.scaling, c.alpha === null ? null : c.alpha / c.r);
        assert.ok(lastSeg(c.targets, L.module), `${L.module} is not one of ${c.targets}`);
        if (c.fifo !== undefined) assert.equal(L.fanInFanOut, c.fifo);
      }
      for (const t of c.targets) assert.ok(a.layers.some((L) => L.module.endsWith(`.${t}`)), `no ${t}`);
      assert.deepEqual(a.replacedTensors.map((t) => t.baseKey).sort(), (c.replaced ?? []).sort());
      const codes = new Set(a.warnings.map((w) => w.code));
      assert.deepEqual([...codes].sort(), (c.warnings ?? []).sort(), JSON.stringify(a.warnings));
    } finally { await a.checkpoint.close(); }
  });
}

test('real peft-gpt2-seqcls: score head saved without modules_to_save is a head replacement', { skip }, async () => {
  const a = await loadAdapter(join(realDir, 'peft-gpt2-seqcls'));
  try { assert.deepEqual(a.replacedTensors.map((t) => [t.key, t.reason]), [['base_model.model.score.weight', 'head']]); }
  finally { await a.checkpoint.close(); }
});

test('real peft-bert-seqcls: modules_to_save classifier', { skip }, async () => {
  const a = await loadAdapter(join(realDir, 'peft-bert-seqcls'));
  try { assert.ok(a.replacedTensors.every((t) => t.reason === 'modules_to_save')); }
  finally { await a.checkpoint.close(); }
});

test('real peft-gemma3-270m: newest PEFT config keys are known; GQA shapes', { skip }, async () => {
  const a = await loadAdapter(join(realDir, 'peft-gemma3-270m'));
  try {
    assert.ok(!a.warnings.some((w) => w.code === 'UnknownConfigKey'));
    const k = a.layers.find((l) => l.module === 'model.layers.0.self_attn.k_proj')!;
    const q = a.layers.find((l) => l.module === 'model.layers.0.self_attn.q_proj')!;
    assert.deepEqual([k.inFeatures, k.outFeatures, q.outFeatures], [640, 256, 1024]);
  } finally { await a.checkpoint.close(); }
});

test('real peft-gpt2-bias-lora-only: with a GPT-2-shaped base, orientation follows the base (Conv1D)', { skip }, async () => {
  const a0 = await loadAdapter(join(realDir, 'peft-gpt2-bias-lora-only'));
  // A base with GPT-2's stored shapes (Conv1D: (in, out)); values are irrelevant to the checks.
  const shapes = new Map<string, number[]>();
  for (const L of a0.layers) shapes.set(L.baseKey!, [L.inFeatures, L.outFeatures]);
  await a0.checkpoint.close();
  const base = memCheckpoint('gpt2-shapes', [...shapes].map(([name, shape]) => ({ name, shape, data: new Float32Array(0) })));
  const a = await loadAdapter(join(realDir, 'peft-gpt2-bias-lora-only'), { base });
  try {
    assert.ok(a.layers.every((L) => L.fanInFanOut && L.sources.fanInFanOut === 'inferred'));
    const codes = a.warnings.map((w) => w.code);
    assert.ok(codes.includes('FanInFanOutOnConv1D') && codes.includes('BiasLoraOnlyMissing') && codes.includes('AmbiguousTargetSuffix'));
  } finally { await a.checkpoint.close(); }
});

for (const dir of [join(realDir, 'peftbin-bloom560m-mergedlinear'), join(repoRoot, 'test/fixtures/real/peftbin-bloom560m-mergedlinear')]) {
  test(`bloom MergedLinear (${dir.includes('shared') ? 'shared' : 'vendored'}): enable_lora [T,F,T], r 8, α 16`, { skip: dir.includes('shared') ? skip : false }, async () => {
    const a = await loadAdapter(dir);
    try {
      assert.equal(a.format, 'peft-mergedlinear');
      assert.equal(a.layers.length, 24);
      for (const L of a.layers) {
        assert.equal(L.kind, 'merged-linear');
        assert.deepEqual([L.r, L.alpha, L.scaling], [8, 16, 2]);
        assert.deepEqual(L.enableLora, [true, false, true]);
        assert.equal(L.sources.enableLora, 'declared');
        assert.deepEqual([L.inFeatures, L.outFeatures], [1024, 3072]);
        assert.equal(L.fanInFanOut, true); // what the config says
      }
      // bloom's query_key_value is an nn.Linear stored (out, in) = (3072, 1024): the config's fan_in_fan_out contradicts it.
      const base = memCheckpoint('bloom-shapes', a.layers.map((L) => ({ name: L.baseKey!, shape: [3072, 1024], data: new Float32Array(0) })));
      const b = await loadAdapter(dir, { base });
      try {
        assert.ok(b.warnings.some((w) => w.code === 'FanInFanOutMismatch'));
        assert.ok(b.layers.every((L) => L.fanInFanOut === false && L.sources.fanInFanOut === 'inferred'));
      } finally { await b.checkpoint.close(); }
    } finally { await a.checkpoint.close(); }
  });
}

test('real loralib files: overrides give α and masks; without them α unknown and gptneox groups inferred as 2', { skip }, async () => {
  const cn = await loadAdapter(join(realDir, 'loralib-cnclip-bert/lora_weights.pt'), { alpha: 16 });
  const nx = await loadAdapter(join(realDir, 'loralib-gptneox-mergedlinear/lora.pth'), { alpha: 32, enableLora: [true, false, true] });
  const nx0 = await loadAdapter(join(realDir, 'loralib-gptneox-mergedlinear/lora.pth'));
  try {
    assert.ok(cn.layers.every((L) => L.alpha === 16 && L.scaling === 1 && L.kind === 'linear'));
    for (const L of nx.layers) {
      assert.deepEqual([L.r, L.alpha, L.scaling, L.kind], [4, 32, 8, 'merged-linear']);
      assert.deepEqual(L.enableLora, [true, false, true]);
      assert.equal(L.sources.enableLora, 'declared');
      assert.deepEqual([L.inFeatures, L.outFeatures], [2048, 6144]);
    }
    for (const L of nx0.layers) {
      assert.equal(L.alpha, null);
      assert.equal(L.sources.alpha, 'unknown');
      assert.equal(L.aShape[0]! / L.bShape[1]!, 2);
      assert.equal(L.enableLora!.filter(Boolean).length, 2);
      assert.equal(L.sources.enableLora, 'inferred');
      assert.ok(L.notes.some((n) => n.includes('2 of 3')));
    }
  } finally { await cn.checkpoint.close(); await nx.checkpoint.close(); await nx0.checkpoint.close(); }
});
