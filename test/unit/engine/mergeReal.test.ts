/**
 * Real third-party adapters (../shared/fixtures/real, skipped when absent) merged into SYNTHETIC random bases of the
 * shapes the real models have, checked against W0 + s·ΔW computed here independently (plain loops in double, the
 * layouts written out from the model definitions: GPT-2 Conv1D stores (in, out), MergedLinear fills the enabled thirds).
 * Big adapters are cut to their first block(s) to keep the suite fast; two small ones are merged whole from the
 * original files (including a torch .pt).
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadAdapter } from '../../../src/core/adapter/load';
import type { Adapter } from '../../../src/core/adapter/types';
import { fromF32 } from '../../../src/core/convert';
import { merge } from '../../../src/core/engine/merge';
import type { AdapterSpec } from '../../../src/core/options';
import { readSafetensors, realDir, rng, tempDir, ulpAt, values, writeSafetensors, type RawTensor } from './mergeTestUtil';

interface RealCase {
  dir: string;
  /** Weights file inside `dir` (the loader is pointed at the folder for PEFT). */
  file?: string;
  /** Scaling as documented in SOURCES.md (α/r of the training code), not as our loader computes it. */
  scaling: number;
  alpha?: number;
  enableLora?: boolean[];
  /** Keep only modules whose first layer index is below this (null: the whole real file, unmodified). */
  keepBelow: number | null;
  baseDtype: 'F32' | 'F16' | 'BF16';
}

const CASES: RealCase[] = [
  { dir: 'peft-bert-seqcls', scaling: 4, keepBelow: 2, baseDtype: 'F32' },
  { dir: 'loralib-cnclip-bert', file: 'lora_weights.pt', scaling: 1, alpha: 16, keepBelow: null, baseDtype: 'F32' },
  { dir: 'peft-gpt2-seqcls', scaling: 1, keepBelow: 2, baseDtype: 'F32' },
  { dir: 'peft-gpt2-bias-lora-only', scaling: 4, keepBelow: 1, baseDtype: 'F32' },
  { dir: 'peftbin-gpt2-seqcls', scaling: 4, keepBelow: 1, baseDtype: 'F16' },
  { dir: 'peftbin-bloom560m-mergedlinear', scaling: 2, keepBelow: 1, baseDtype: 'BF16' },
  { dir: 'loralib-gptneox-mergedlinear', file: 'lora.pth', scaling: 8, alpha: 32, enableLora: [true, false, true], keepBelow: 1, baseDtype: 'F16' },
  { dir: 'peft-vit-food101', scaling: 2, keepBelow: 1, baseDtype: 'F32' },
  { dir: 'peft-whisper-small', scaling: 4, keepBelow: 1, baseDtype: 'F16' },
  { dir: 'peft-gemma3-270m', scaling: 4, keepBelow: 1, baseDtype: 'BF16' },
  { dir: 'peft-qwen2.5-0.5b', scaling: 2, keepBelow: 2, baseDtype: 'F32' },
  { dir: 'diffusers-sd21-bf16', file: 'pytorch_lora_weights.safetensors', scaling: 1, keepBelow: 1, baseDtype: 'BF16' },
];

/** GPT-2's Conv1D modules store their weight (in, out). */
const isConv1D = (module: string) => /(^|\.)h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)$/.test(module);

function firstIndex(module: string): number {
  const m = /\.(\d+)\./.exec(`${module}.`);
  return m ? Number(m[1]) : 0;
}

/** Synthetic base values in the storage dtype (convert.ts has its own bit-exactness tests). */
const encode = (v: Float64Array, dtype: 'F32' | 'F16' | 'BF16') => fromF32(Float32Array.from(v), dtype);

interface Expected {
  baseKey: string;
  shape: number[];
  /** ΔW at a stored flat index (null for replacements). */
  delta: ((idx: number) => number) | null;
  replacement: RawTensor | null;
}

/**
 * ΔW in the base's storage orientation, from A and B alone, one element at a time (big layers are checked on a
 * sample of elements). MergedLinear: enabled block k (k-th true flag, mask position j) is B_k·A_k in output rows
 * [j·out_g, (j+1)·out_g), with A_k = rows [k·r, (k+1)·r) of A and B_k = rows [k·out_g, (k+1)·out_g) of B.
 */
function independentDelta(A: RawTensor, B: RawTensor, module: string, scaling: number, mask: boolean[] | null): { shape: number[]; at: (idx: number) => number } {
  const a = values(A);
  const b = values(B);
  const inF = A.shape[1]!;
  const ra = A.shape[0]!;
  const rb = B.shape[1]!;
  const rowsB = B.shape[0]!;
  const blocks = mask && mask.length > 1 ? mask : [true];
  const g = blocks.filter(Boolean).length;
  const outG = rowsB / g;
  const out = outG * blocks.length;
  assert.equal(ra, rb * g, `${module}: A rows = r·g`);
  const blockOf: number[] = [];
  let k = 0;
  for (const on of blocks) blockOf.push(on ? k++ : -1);
  const conv1d = isConv1D(module);
  const at = (idx: number) => {
    const o = conv1d ? idx % out : Math.floor(idx / inF);
    const i = conv1d ? Math.floor(idx / out) : idx % inF;
    const kk = blockOf[Math.floor(o / outG)]!;
    if (kk < 0) return 0;
    const row = kk * outG + (o % outG);
    let s = 0;
    for (let r = 0; r < rb; r++) s += b[row * rb + r]! * a[(kk * rb + r) * inF + i]!;
    return scaling * s;
  };
  return { shape: conv1d ? [inF, out] : [out, inF], at };
}

async function rawOf(adapter: Adapter, key: string): Promise<RawTensor> {
  const info = adapter.checkpoint.get(key)!;
  return { dtype: info.dtype, shape: [...info.shape], bytes: await adapter.checkpoint.readBytes(key) };
}

const present = existsSync(realDir);

for (const c of CASES) {
  const src = join(realDir, c.dir);
  test(`real adapter ${c.dir} merges into a synthetic base`, { skip: !present || !existsSync(src) ? 'real fixtures absent' : false }, async () => {
    const t = tempDir('real');
    const opened: Adapter[] = [];
    try {
      const srcPath = c.file ? join(src, c.file) : src;
      const overrides = { ...(c.alpha !== undefined ? { alpha: c.alpha } : {}), ...(c.enableLora ? { enableLora: c.enableLora } : {}) };
      const full = await loadAdapter(srcPath, overrides);
      opened.push(full);
      // Within the kept blocks, stop at ~3M weights (but keep at least one layer) so each case takes a second or two.
      let budget = 3_000_000;
      const keep = full.layers.filter((l) => {
        if (c.keepBelow === null) return true;
        if (firstIndex(l.module) >= c.keepBelow) return false;
        const n = l.inFeatures * l.outFeatures;
        if (budget <= 0 || (n > budget && budget < 3_000_000)) return false;
        budget -= n;
        return true;
      });
      assert.ok(keep.length > 0);

      // The adapter we merge: the original file, or the kept layers' tensors (bytes unchanged) in a safetensors copy.
      let adapterPath = srcPath;
      if (c.keepBelow !== null) {
        const dir = join(t.dir, 'adapter');
        mkdirSync(dir);
        const keys = new Set<string>();
        for (const l of keep) for (const k of [l.aKey, l.bKey, l.magnitudeKey, l.loraBiasKey, l.alphaKey]) if (k) keys.add(k);
        for (const r of full.replacedTensors) keys.add(r.key);
        const tensors: [string, RawTensor][] = [];
        for (const k of [...keys].sort()) tensors.push([k, await rawOf(full, k)]);
        const peftLike = full.format === 'peft' || full.format === 'peft-mergedlinear';
        const name = peftLike ? 'adapter_model.safetensors' : full.format === 'diffusers' ? 'pytorch_lora_weights.safetensors' : 'adapter.safetensors';
        writeSafetensors(join(dir, name), tensors, full.checkpoint.metadata ?? undefined);
        if (full.configPath) copyFileSync(full.configPath, join(dir, 'adapter_config.json'));
        adapterPath = peftLike ? dir : join(dir, name);
      }

      // The synthetic base: every kept layer's weight, the replaced tensors, and one tensor nobody touches.
      const next = rng(0x5eed + c.dir.length);
      const expected: Expected[] = [];
      for (const l of keep) {
        const { shape, at } = independentDelta(await rawOf(full, l.aKey), await rawOf(full, l.bKey), l.module, c.scaling, c.enableLora ?? (l.enableLora && l.enableLora.length > 1 ? l.enableLora : null));
        expected.push({ baseKey: `${l.module.replace(/^unet\./, '')}.weight`, shape, delta: at, replacement: null });
      }
      for (const r of full.replacedTensors) {
        expected.push({ baseKey: r.baseKey!, shape: r.shape, delta: null, replacement: await rawOf(full, r.key) });
      }
      const untouched = new Float64Array(35).map(() => next());
      const random = (n: number) => new Float64Array(n).map(() => next());
      const baseTensors: [string, RawTensor][] = expected.map((e) => [
        e.baseKey, { dtype: c.baseDtype, shape: e.shape, bytes: encode(random(e.shape.reduce((p, x) => p * x, 1)), c.baseDtype) },
      ]);
      baseTensors.push(['zz.untouched.weight', { dtype: c.baseDtype, shape: [7, 5], bytes: encode(untouched, c.baseDtype) }]);
      const basePath = join(t.dir, 'base.safetensors');
      writeSafetensors(basePath, baseTensors, { format: 'pt' });
      const base = readSafetensors(basePath);

      if (process.env['KEEP_REAL']) console.log('tmp', t.dir);
      const out = join(t.dir, 'merged.safetensors');
      const spec: AdapterSpec = { path: adapterPath, ...overrides };
      const report = await merge({ base: basePath, adapters: [spec], out, device: 'ts' });
      assert.equal(report.tensorsMerged, keep.length);
      assert.equal(report.tensorsReplaced, full.replacedTensors.length);
      for (const m of report.modules) assert.ok(Math.abs(m.adapters[0]!.scaling - c.scaling) < 1e-12, `${m.baseKey} scaling ${m.adapters[0]!.scaling}`);

      const got = readSafetensors(out);
      assert.deepEqual(got.tensors.get('zz.untouched.weight')!.bytes, base.tensors.get('zz.untouched.weight')!.bytes);
      let nonZero = 0;
      for (const e of expected) {
        const g = got.tensors.get(e.baseKey)!;
        assert.equal(g.dtype, c.baseDtype);
        const gv = values(g);
        const w0 = values(base.tensors.get(e.baseKey)!); // W0 as stored
        const rep = e.replacement ? values(e.replacement) : null;
        // every element of small tensors, an evenly spread sample of ~200k of big ones
        const step = Math.max(1, Math.floor(gv.length / 200_000)) | 1;
        let seenNonZero = false;
        for (let i = 0; i < gv.length; i += step) {
          const d = e.delta ? e.delta(i) : 0;
          if (d !== 0) seenNonZero = true;
          const want = rep ? rep[i]! : w0[i]! + d;
          const tol = c.baseDtype === 'F32' ? 1e-6 + 1e-6 * Math.abs(want) : ulpAt(want, c.baseDtype) + 1e-7;
          assert.ok(Math.abs(gv[i]! - want) <= tol, `${e.baseKey}[${i}]: ${gv[i]} vs ${want}`);
        }
        if (seenNonZero) nonZero++;
      }
      // Some real adapters have untrained (zero) lora_B in places, but never everywhere.
      assert.ok(nonZero > 0, 'at least one update is non-zero');
    } finally {
      await Promise.all(opened.map((a) => a.checkpoint.close()));
      if (!process.env['KEEP_REAL']) t.cleanup();
    }
  });
}
