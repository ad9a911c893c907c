// Load fixtures for the hardening scenarios: a checkpoint with 20,000 tensors and a ~50 MB header, and a PEFT adapter
// with 2,048 layers. Written with the suite's own independent writer; tiny tensors, so the files are header-bound.
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { repoRoot } from './sampleWorkspace.mjs';
import { writeSafetensors } from './safetensors.mjs';

/** Tensor names sort (and are written) in index order, so "the last tensor" means the same in every ordering. */
export const manyTensorName = (i, pad) => `model.layers.${String(i).padStart(5, '0')}.block.${pad}.weight`;

/**
 * 20,000 F16 tensors of shape [2] whose long names (≈1 KB each) plus one large __metadata__ value make the JSON
 * header ≈50 MB (the reference reader's cap is 100 MB).
 */
export function buildManyTensors(file, { count = 20000, nameBytes = 1000, metadataBytes = 30 * 1024 * 1024 } = {}) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const pad = 'x'.repeat(Math.max(0, nameBytes - manyTensorName(0, '').length));
  const tensors = new Map();
  for (let i = 0; i < count; i++) {
    tensors.set(manyTensorName(i, pad), { dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, i & 0x7bff]) });
  }
  // A training log pasted into the metadata: one big string value.
  writeSafetensors(file, tensors, { format: 'pt', notes: 'loss=0.123;'.repeat(Math.ceil(metadataBytes / 11)).slice(0, metadataBytes) });
  const headerBytes = Number(fs.readFileSync(file).readBigUInt64LE(0));
  return { file, count, headerBytes, lastName: manyTensorName(count - 1, pad), bytes: fs.statSync(file).size };
}

/** A PEFT adapter with `layers` LoRA layers (r = 1 over 8×8 q/k/v/o projections of layers/4 blocks). */
export function buildManyLayers(dir, { layers = 2048, dim = 8 } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const kinds = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];
  const tensors = new Map();
  let seed = 7;
  const rand = (n) => Float32Array.from({ length: n }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5);
  const modules = [];
  for (let i = 0; i < layers; i++) {
    const m = `model.layers.${Math.floor(i / kinds.length)}.self_attn.${kinds[i % kinds.length]}`;
    modules.push(m);
    tensors.set(`base_model.model.${m}.lora_A.weight`, { dtype: 'F32', shape: [1, dim], data: rand(dim) });
    tensors.set(`base_model.model.${m}.lora_B.weight`, { dtype: 'F32', shape: [dim, 1], data: rand(dim) });
  }
  writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify({
    peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: 'synthetic/many-layers', r: 1, lora_alpha: 2,
    target_modules: kinds, fan_in_fan_out: false, lora_dropout: 0, bias: 'none', use_rslora: false, use_dora: false,
  }, null, 2) + '\n');
  return { dir, layers, modules };
}

/**
 * Runs one inspect job the way the extension does: dist/worker.js in a worker thread, the report back by
 * structured clone. Returns the wall time and the report.
 */
export function inspectInWorker(file, options = { stats: true }) {
  const workerPath = path.join(repoRoot, 'dist', 'worker.js');
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const w = new Worker(workerPath);
    w.on('message', (m) => {
      if (m.type === 'progress') return;
      const ms = performance.now() - t0;
      void w.terminate();
      if (m.type === 'result') resolve({ ms, report: m.report });
      else reject(new Error(`inspect failed in the worker: ${m.error?.message}`));
    });
    w.on('error', reject);
    w.postMessage({ type: 'start', job: { kind: 'inspect', path: file, options } });
  });
}
