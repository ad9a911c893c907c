// Builds workspaces from the committed oracle fixtures (test/fixtures/oracle): for the E2E scenarios and for
// `npm run try`. Inputs are copied, never linked, so nothing a scenario does can touch the fixtures.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSafetensors } from './safetensors.mjs';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const oracleDir = path.join(repoRoot, 'test', 'fixtures', 'oracle');

export function oracle(caseName, ...rest) {
  return path.join(oracleDir, caseName, ...rest);
}

export function readCase(caseName) {
  return JSON.parse(fs.readFileSync(oracle(caseName, 'case.json'), 'utf8'));
}

function copy(src, dest) {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(src, dest);
}

/** A PEFT adapter folder with only the safetensors weights (the .bin twin would make "which file" ambiguous). */
function copyPeftAdapter(caseName, destDir) {
  copy(oracle(caseName, 'adapter', 'adapter_config.json'), path.join(destDir, 'adapter_config.json'));
  copy(oracle(caseName, 'adapter', 'adapter_model.safetensors'), path.join(destDir, 'adapter_model.safetensors'));
}

/**
 * The link file the extension reads to know which base/adapter/merged belong together (parity on save).
 * Paths are relative to the workspace folder.
 */
export function writeLinkFile(workspace, { base, adapter, merged }) {
  const file = path.join(workspace, '.vscode', 'lora-lens.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ links: [{ base, adapter, merged }] }, null, 2) + '\n');
  return file;
}

/** Workspace for the inspect / save-config / merge / compare scenarios. */
export function buildMainWorkspace(dir) {
  fs.mkdirSync(dir, { recursive: true });
  copyPeftAdapter('peft-gpt2-fan_in_fan_out', path.join(dir, 'peft-gpt2', 'adapter'));
  copy(oracle('peft-gpt2-fan_in_fan_out', 'base.safetensors'), path.join(dir, 'peft-gpt2', 'base.safetensors'));
  // loralib stores no hyper-parameters: without lora_config.json α is unknown until the user sets it.
  copy(oracle('loralib-gpt2-c_attn', 'adapter.safetensors'), path.join(dir, 'loralib-gpt2', 'adapter.safetensors'));
  copy(oracle('loralib-gpt2-c_attn', 'base.safetensors'), path.join(dir, 'loralib-gpt2', 'base.safetensors'));
  copy(oracle('kohya-locon-f16', 'lora.safetensors'), path.join(dir, 'kohya-locon', 'lora.safetensors'));
  copy(oracle('kohya-locon-f16', 'base.safetensors'), path.join(dir, 'kohya-locon', 'base.safetensors'));
  copyPeftAdapter('peft-llama-f16', path.join(dir, 'llama-f16', 'adapter'));
  copyPeftAdapter('peft-llama-bf16-rslora-patterns', path.join(dir, 'llama-bf16-rslora', 'adapter'));
  return dir;
}

/** Workspace whose link file ties base, adapter and the oracle merged checkpoint together (parity on save). */
export function buildParityWorkspace(dir) {
  fs.mkdirSync(dir, { recursive: true });
  copy(oracle('peft-gpt2-fan_in_fan_out', 'base.safetensors'), path.join(dir, 'base.safetensors'));
  copyPeftAdapter('peft-gpt2-fan_in_fan_out', path.join(dir, 'adapter'));
  copy(oracle('peft-gpt2-fan_in_fan_out', 'merged.safetensors'), path.join(dir, 'merged.safetensors'));
  writeLinkFile(dir, { base: 'base.safetensors', adapter: 'adapter', merged: 'merged.safetensors' });
  return dir;
}

/**
 * Like the parity workspace, but the linked "merged" checkpoint is a copy of the base: wherever parity runs, it fails.
 * The workspace-trust scenario uses it to show that nothing runs in Restricted Mode.
 */
export function buildMismatchedParityWorkspace(dir) {
  fs.mkdirSync(dir, { recursive: true });
  copy(oracle('peft-gpt2-fan_in_fan_out', 'base.safetensors'), path.join(dir, 'base.safetensors'));
  copyPeftAdapter('peft-gpt2-fan_in_fan_out', path.join(dir, 'adapter'));
  copy(oracle('peft-gpt2-fan_in_fan_out', 'base.safetensors'), path.join(dir, 'merged.safetensors'));
  writeLinkFile(dir, { base: 'base.safetensors', adapter: 'adapter', merged: 'merged.safetensors' });
  return dir;
}

/**
 * A synthetic fp32 base (llama-style names) big enough that merging takes seconds, with a PEFT adapter on every layer.
 * Values come from a cheap LCG: the test only needs the merge to run long enough to be cancelled.
 */
export function buildBigWorkspace(dir, { megabytes = 400, dim = 2048, r = 16 } = {}) {
  fs.mkdirSync(path.join(dir, 'adapter'), { recursive: true });
  const layerBytes = dim * dim * 4;
  const layers = Math.max(1, Math.round((megabytes * 1024 * 1024) / layerBytes));
  let seed = 12345;
  const rand = (n, scale) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) { seed = (seed * 1664525 + 1013904223) >>> 0; a[i] = ((seed / 4294967296) - 0.5) * scale; }
    return a;
  };
  const w = rand(dim * dim, 0.04); // shared by every layer: generating 100M values would cost more than the merge
  const base = new Map();
  const lora = new Map();
  for (let i = 0; i < layers; i++) {
    base.set(`model.layers.${i}.mlp.down_proj.weight`, { dtype: 'F32', shape: [dim, dim], data: w });
    lora.set(`base_model.model.model.layers.${i}.mlp.down_proj.lora_A.weight`, { dtype: 'F32', shape: [r, dim], data: rand(r * dim, 0.02) });
    lora.set(`base_model.model.model.layers.${i}.mlp.down_proj.lora_B.weight`, { dtype: 'F32', shape: [dim, r], data: rand(dim * r, 0.02) });
  }
  base.set('model.norm.weight', { dtype: 'F32', shape: [dim], data: new Float32Array(dim).fill(1) });
  writeSafetensors(path.join(dir, 'base.safetensors'), base, { format: 'pt' });
  writeSafetensors(path.join(dir, 'adapter', 'adapter_model.safetensors'), lora, { format: 'pt' });
  fs.writeFileSync(path.join(dir, 'adapter', 'adapter_config.json'), JSON.stringify({
    peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: 'synthetic/llama-big', r, lora_alpha: 2 * r,
    target_modules: ['down_proj'], fan_in_fan_out: false, lora_dropout: 0, bias: 'none', use_rslora: false, use_dora: false,
    rank_pattern: {}, alpha_pattern: {}, modules_to_save: null, inference_mode: true,
  }, null, 2) + '\n');
  return { dir, layers, bytes: fs.statSync(path.join(dir, 'base.safetensors')).size };
}

/**
 * The workspace `npm run try` opens: one folder per example, a linked base/adapter/merged triple for parity on save,
 * and a README saying what to click.
 */
export function buildTryWorkspace(dir) {
  fs.mkdirSync(dir, { recursive: true });
  buildMainWorkspace(dir);
  copy(oracle('loralib-gpt2-c_attn', 'lora_config.json'), path.join(dir, 'loralib-gpt2-with-config', 'lora_config.json'));
  copy(oracle('loralib-gpt2-c_attn', 'adapter.safetensors'), path.join(dir, 'loralib-gpt2-with-config', 'adapter.safetensors'));
  copy(oracle('loralib-gpt2-c_attn', 'adapter.pt'), path.join(dir, 'loralib-gpt2-with-config', 'adapter.pt'));
  copy(oracle('peft-dora-embedding-f32', 'adapter', 'adapter_config.json'), path.join(dir, 'peft-dora', 'adapter', 'adapter_config.json'));
  copy(oracle('peft-dora-embedding-f32', 'adapter', 'adapter_model.safetensors'), path.join(dir, 'peft-dora', 'adapter', 'adapter_model.safetensors'));
  copy(oracle('peft-dora-embedding-f32', 'base.safetensors'), path.join(dir, 'peft-dora', 'base.safetensors'));
  copy(oracle('peft-gpt2-fan_in_fan_out', 'merged.safetensors'), path.join(dir, 'peft-gpt2', 'merged.safetensors'));
  writeLinkFile(dir, { base: 'peft-gpt2/base.safetensors', adapter: 'peft-gpt2/adapter', merged: 'peft-gpt2/merged.safetensors' });
  // Real third-party adapters, when this checkout sits next to them: linked, never copied (licences).
  const real = path.resolve(repoRoot, '..', 'shared', 'fixtures', 'real');
  const realLink = path.join(dir, 'real-adapters');
  if (fs.existsSync(real) && !fs.existsSync(realLink)) fs.symlinkSync(real, realLink);
  fs.writeFileSync(path.join(dir, 'README.md'), `# LoRA Lens sample workspace

Generated by \`npm run try\` from the oracle fixtures in test/fixtures/oracle. Things to try:

- Open \`peft-gpt2/adapter/adapter_model.safetensors\`: the inspector shows r, α and scaling α/r per layer.
- Open \`loralib-gpt2/adapter.safetensors\`: loralib stores no α; set α and the mask (e.g. \`1,0,1\`) and save a
  \`lora_config.json\` beside it (\`loralib-gpt2-with-config/\` shows the result).
- Command palette → **LoRA Lens: Merge Adapter into Base…** with \`peft-gpt2/base.safetensors\` and \`peft-gpt2/adapter\`.
- **LoRA Lens: Compare Adapters…** with \`llama-f16/adapter\` and \`llama-bf16-rslora/adapter\`.
- \`.vscode/lora-lens.json\` links \`peft-gpt2\`'s base, adapter and merged checkpoint: edit \`lora_alpha\` in
  \`peft-gpt2/adapter/adapter_config.json\` and save — the parity check reports the layers that no longer match in
  Problems and the status bar.
- \`kohya-locon/lora.safetensors\` (kohya LoCon, F16) and \`peft-dora/\` (DoRA + embedding) are there too.
`);
  return dir;
}
