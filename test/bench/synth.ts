/**
 * Synthetic TinyLlama-1.1B-shaped checkpoint (22 layers, hidden 2048, intermediate 5632, vocab 32000, GQA k/v 256)
 * in fp16, two shards + index, and a PEFT adapter with r=16 on q,k,v,o,gate,up,down. Written with a deliberately
 * independent minimal writer so the benchmark input does not depend on the code under test.
 */
import { mkdirSync, openSync, writeSync, closeSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const SHAPE = { layers: 22, hidden: 2048, inter: 5632, vocab: 32000, kv: 256, r: 16, alpha: 32 };

interface T { name: string; dtype: 'F16' | 'F32'; shape: number[]; fill: (buf: Uint8Array, seed: number) => void }

let state = 0x9e3779b9;
function rnd(): number {
  // xorshift32: fast and plenty for filling benchmark tensors
  state ^= state << 13; state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5; state >>>= 0;
  return state;
}

/** Random finite fp16 values of magnitude ~[2^-9, 2^-1): realistic weight scale, no Inf/NaN. */
function fillF16(buf: Uint8Array, seed: number): void {
  state = (seed * 2654435761) >>> 0 || 1;
  const u16 = new Uint16Array(buf.buffer, buf.byteOffset, buf.byteLength / 2);
  for (let i = 0; i < u16.length; i += 2) {
    const x = rnd();
    u16[i] = (x & 0x83ff) | ((6 + ((x >>> 10) & 7)) << 10);
    if (i + 1 < u16.length) u16[i + 1] = ((x >>> 16) & 0x83ff) | ((6 + ((x >>> 26) & 7)) << 10);
  }
}

function fillF32(buf: Uint8Array, seed: number): void {
  state = (seed * 2654435761) >>> 0 || 1;
  const f = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  for (let i = 0; i < f.length; i++) f[i] = ((rnd() / 4294967296) - 0.5) * 0.02;
}

function writeFile(path: string, tensors: T[], metadata: Record<string, string>): number {
  let off = 0;
  const header: Record<string, unknown> = { __metadata__: metadata };
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1) * (t.dtype === 'F16' ? 2 : 4);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const fd = openSync(path, 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeSync(fd, len);
  writeSync(fd, Buffer.from(json));
  let seed = 1;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1) * (t.dtype === 'F16' ? 2 : 4);
    const buf = new Uint8Array(n);
    t.fill(buf, seed++);
    writeSync(fd, buf);
  }
  closeSync(fd);
  return 8 + json.length + off;
}

const f16 = (name: string, shape: number[]): T => ({ name, dtype: 'F16', shape, fill: fillF16 });

export function baseTensors(): T[] {
  const { layers, hidden: h, inter, vocab, kv } = SHAPE;
  const ts: T[] = [f16('model.embed_tokens.weight', [vocab, h])];
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    ts.push(
      f16(p + 'self_attn.q_proj.weight', [h, h]), f16(p + 'self_attn.k_proj.weight', [kv, h]),
      f16(p + 'self_attn.v_proj.weight', [kv, h]), f16(p + 'self_attn.o_proj.weight', [h, h]),
      f16(p + 'mlp.gate_proj.weight', [inter, h]), f16(p + 'mlp.up_proj.weight', [inter, h]),
      f16(p + 'mlp.down_proj.weight', [h, inter]),
      f16(p + 'input_layernorm.weight', [h]), f16(p + 'post_attention_layernorm.weight', [h]),
    );
  }
  ts.push(f16('model.norm.weight', [h]), f16('lm_head.weight', [vocab, h]));
  return ts;
}

export const TARGETS: Record<string, [number, number]> = {
  'self_attn.q_proj': [SHAPE.hidden, SHAPE.hidden], 'self_attn.k_proj': [SHAPE.kv, SHAPE.hidden],
  'self_attn.v_proj': [SHAPE.kv, SHAPE.hidden], 'self_attn.o_proj': [SHAPE.hidden, SHAPE.hidden],
  'mlp.gate_proj': [SHAPE.inter, SHAPE.hidden], 'mlp.up_proj': [SHAPE.inter, SHAPE.hidden],
  'mlp.down_proj': [SHAPE.hidden, SHAPE.inter],
};

/** Creates (once) `<dir>/base/` (2 shards + index) and `<dir>/adapter/`. Returns the paths. */
export function ensureSynthetic(dir: string): { base: string; adapter: string; bytes: number } {
  const base = join(dir, 'base');
  const adapter = join(dir, 'adapter');
  const marker = join(dir, 'synthetic.done');
  if (existsSync(marker)) return { base, adapter, bytes: Number(readFileSync(marker, 'utf8')) };
  mkdirSync(base, { recursive: true });
  mkdirSync(adapter, { recursive: true });
  const all = baseTensors();
  const half = Math.ceil(all.length / 2);
  const shards = [all.slice(0, half), all.slice(half)];
  const names = shards.map((_, i) => `model-0000${i + 1}-of-00002.safetensors`);
  const weightMap: Record<string, string> = {};
  let total = 0;
  let bytes = 0;
  shards.forEach((s, i) => {
    bytes += writeFile(join(base, names[i]!), s, { format: 'pt' });
    for (const t of s) {
      weightMap[t.name] = names[i]!;
      total += t.shape.reduce((a, b) => a * b, 1) * 2;
    }
  });
  writeFileSync(join(base, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  const lora: T[] = [];
  for (let l = 0; l < SHAPE.layers; l++) {
    for (const [m, [out, inp]] of Object.entries(TARGETS)) {
      const k = `base_model.model.model.layers.${l}.${m}`;
      lora.push({ name: `${k}.lora_A.weight`, dtype: 'F32', shape: [SHAPE.r, inp], fill: fillF32 });
      lora.push({ name: `${k}.lora_B.weight`, dtype: 'F32', shape: [out, SHAPE.r], fill: fillF32 });
    }
  }
  writeFile(join(adapter, 'adapter_model.safetensors'), lora, { format: 'pt' });
  writeFileSync(join(adapter, 'adapter_config.json'), JSON.stringify({
    peft_type: 'LORA', r: SHAPE.r, lora_alpha: SHAPE.alpha, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    fan_in_fan_out: false, bias: 'none', use_rslora: false, task_type: 'CAUSAL_LM', base_model_name_or_path: 'synthetic/tinyllama-1.1b-shaped',
  }, null, 2));
  writeFileSync(marker, String(bytes));
  return { base, adapter, bytes };
}
