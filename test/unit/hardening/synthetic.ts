/** A synthetic base (F16, llama-like names) and a PEFT adapter for it, big enough for a merge to take a while. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** safetensors bytes: tensors in the given order, each [rows, cols] of `dtype`, filled by `fill(i)` per byte. */
export function safetensorsFile(tensors: Array<{ name: string; dtype: 'F16' | 'F32'; shape: number[] }>, seed = 1): Buffer {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * (t.dtype === 'F16' ? 2 : 4);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = Buffer.alloc(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  out.write(json, 8, 'latin1');
  // Small finite values: F16 0x2000–0x27ff, F32 bytes from a cheap LCG masked to stay finite.
  let x = seed >>> 0;
  let p = 8 + json.length;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.dtype === 'F16') {
      for (let i = 0; i < n; i++, p += 2) {
        x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
        out.writeUInt16LE(0x2000 | (x >>> 21), p);
      }
    } else {
      for (let i = 0; i < n; i++, p += 4) {
        x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
        out.writeFloatLE(((x >>> 8) / 2 ** 24 - 0.5) * 0.02, p);
      }
    }
  }
  return out;
}

/** base.safetensors with `layers` q_proj/v_proj weights of dim × dim F16, and a PEFT adapter (r 8) on q_proj. */
export function writeSyntheticPair(dir: string, layers: number, dim: number): { base: string; adapter: string } {
  mkdirSync(dir, { recursive: true });
  const base = join(dir, 'base.safetensors');
  const tensors = [];
  for (let l = 0; l < layers; l++) {
    for (const m of ['q_proj', 'v_proj']) tensors.push({ name: `model.layers.${l}.self_attn.${m}.weight`, dtype: 'F16' as const, shape: [dim, dim] });
  }
  writeFileSync(base, safetensorsFile(tensors, 7));
  const adapterDir = join(dir, 'adapter');
  mkdirSync(adapterDir, { recursive: true });
  const lora = [];
  for (let l = 0; l < layers; l++) {
    const k = `base_model.model.model.layers.${l}.self_attn.q_proj`;
    lora.push({ name: `${k}.lora_A.weight`, dtype: 'F32' as const, shape: [8, dim] }, { name: `${k}.lora_B.weight`, dtype: 'F32' as const, shape: [dim, 8] });
  }
  writeFileSync(join(adapterDir, 'adapter_model.safetensors'), safetensorsFile(lora, 11));
  writeFileSync(join(adapterDir, 'adapter_config.json'), JSON.stringify({
    peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: ['q_proj'], base_model_name_or_path: 'synthetic',
  }));
  return { base, adapter: adapterDir };
}
