import test from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadAdapter, loadAdapterFrom } from '../../../src/core/adapter/load';
import { readConfigFile } from '../../../src/core/adapter/config';
import { openCheckpoint } from '../../../src/core/formats/open';
import type { Adapter } from '../../../src/core/adapter/types';
import { memCheckpoint, oracleDir, readJson } from './helpers';

const cases = readdirSync(oracleDir).filter((d) => !d.includes('.'));

function checkAgainstCase(a: Adapter, c: any, label: string) {
  assert.equal(a.layers.length, c.layers.length, `${label}: layer count`);
  for (const exp of c.layers) {
    const L = a.layers.find((l) => l.module === (exp.lora_name ?? exp.module));
    assert.ok(L, `${label}: layer ${exp.module} missing`);
    assert.equal(L.r, exp.r, `${label} ${exp.module} r`);
    assert.equal(L.alpha, exp.alpha, `${label} ${exp.module} alpha`);
    assert.ok(Math.abs(L.scaling! - exp.scaling) < 1e-12, `${label} ${exp.module} scaling ${L.scaling} vs ${exp.scaling}`);
    if ('fan_in_fan_out' in exp) assert.equal(L.fanInFanOut, exp.fan_in_fan_out, `${label} ${exp.module} fan_in_fan_out`);
    if ('enable_lora' in exp) assert.deepEqual(L.enableLora, exp.enable_lora, `${label} ${exp.module} enable_lora`);
    if ('in_features' in exp) assert.equal(L.inFeatures, exp.in_features, `${label} ${exp.module} in`);
    if ('out_features' in exp) assert.equal(L.outFeatures, exp.out_features, `${label} ${exp.module} out`);
    if ('lora_A_shape' in exp) assert.deepEqual(L.aShape, exp.lora_A_shape);
    if ('lora_B_shape' in exp) assert.deepEqual(L.bShape, exp.lora_B_shape);
    if (exp.kind) assert.equal(L.kind, exp.kind, `${label} ${exp.module} kind`);
    if (exp.kernel) assert.deepEqual(L.kernel, exp.kernel);
    if ('dora' in exp) assert.equal(L.magnitudeKey !== null, exp.dora);
    if (exp.base_key && c.format !== 'kohya') assert.equal(L.baseKey, exp.base_key);
  }
}

for (const name of cases) {
  const dir = join(oracleDir, name);
  const c = readJson(join(dir, 'case.json'));
  if (c.format === 'peft') {
    test(`oracle ${name}: PEFT folder and .bin match case.json`, async () => {
      const a = await loadAdapter(join(dir, c.files.adapter));
      try {
        assert.equal(a.format, 'peft');
        checkAgainstCase(a, c, name);
        assert.deepEqual(a.warnings.map((w) => w.code), []);
      } finally { await a.checkpoint.close(); }
      const bin = join(dir, c.files.adapter, 'adapter_model.bin');
      if (readdirSync(join(dir, c.files.adapter)).includes('adapter_model.bin')) {
        const b = await loadAdapter(bin);
        try { checkAgainstCase(b, c, `${name} (.bin)`); } finally { await b.checkpoint.close(); }
      }
    });
  } else if (c.format === 'loralib') {
    for (const f of [c.files.adapter, c.files.adapter_pt, c.files.full_state_dict]) {
      test(`oracle ${name}: ${f} with lora_config.json matches case.json`, async () => {
        const base = await openCheckpoint(join(dir, c.files.base));
        const a = await loadAdapter(join(dir, f), { base });
        try {
          assert.equal(a.format, f === c.files.full_state_dict ? 'loralib-full' : 'loralib');
          assert.equal(a.configPath, join(dir, 'lora_config.json'));
          checkAgainstCase(a, c, `${name}/${f}`);
          // The full state dict holds the unmerged base: nothing replaces it, and it does not look merged.
          assert.deepEqual(a.replacedTensors, []);
          assert.ok(!a.warnings.some((w) => w.code === 'LooksMerged'));
        } finally { await a.checkpoint.close(); await base.close(); }
      });
    }
    test(`oracle ${name}: without a config α is unknown, never assumed`, async () => {
      const ck = await openCheckpoint(join(dir, c.files.adapter));
      const a = await loadAdapterFrom(ck, { path: dir, weightsPath: ck.path, configPath: null, config: null });
      try {
        for (const L of a.layers) {
          assert.equal(L.alpha, null);
          assert.equal(L.scaling, null);
          assert.equal(L.sources.alpha, 'unknown');
          const exp = c.layers.find((x: any) => x.module === L.module);
          if (exp.enable_lora.length > 1) {
            // Inferred from shapes alone: q,v of a fused qkv.
            assert.deepEqual(L.enableLora, exp.enable_lora);
            assert.equal(L.sources.enableLora, 'inferred');
          }
        }
      } finally { await ck.close(); }
    });
    test(`oracle ${name}: a full state dict saved after eval() (merged weights) → LooksMerged`, async () => {
      const ad = await openCheckpoint(join(dir, c.files.adapter));
      const merged = await openCheckpoint(join(dir, c.files.merged));
      const base = await openCheckpoint(join(dir, c.files.base));
      try {
        const entries = [];
        for (const ck of [merged, ad]) for (const t of ck.tensors) entries.push({ name: t.name, shape: [...t.shape], data: await ck.readF32(t.name) });
        const full = memCheckpoint(join(dir, 'merged_full_state.pt'), entries);
        const cfg = readConfigFile(join(dir, c.files.config));
        const a = await loadAdapterFrom(full, { path: full.path, weightsPath: full.path, configPath: null, config: cfg }, { base });
        assert.equal(a.format, 'loralib-full');
        const w = a.warnings.find((x) => x.code === 'LooksMerged');
        assert.ok(w, JSON.stringify(a.warnings));
        assert.ok(!a.replacedTensors.some((t) => t.key.endsWith('.weight')));
      } finally { await ad.close(); await merged.close(); await base.close(); }
    });
  } else if (c.format === 'kohya') {
    test(`oracle ${name}: kohya names, α tensors, and base-key mapping with a base`, async () => {
      const base = await openCheckpoint(join(dir, c.files.base));
      const a = await loadAdapter(join(dir, c.files.adapter), { base });
      const noBase = await loadAdapter(join(dir, c.files.adapter));
      try {
        assert.equal(a.format, 'kohya');
        checkAgainstCase(a, c, name);
        for (const exp of c.layers) {
          assert.equal(a.layers.find((l) => l.module === exp.lora_name)!.baseKey, exp.base_key);
          assert.equal(noBase.layers.find((l) => l.module === exp.lora_name)!.baseKey, null);
        }
        assert.ok(a.layers.every((l) => l.alphaKey === `${l.module}.alpha` && l.sources.alpha === 'declared'));
      } finally { await a.checkpoint.close(); await noBase.checkpoint.close(); await base.close(); }
    });
  }
}
