/**
 * Tensor-name classification: which tensors are LoRA factors (and of which family), which are α scalars,
 * magnitudes or lora biases, and what is left over (heads, saved biases, full state). Pure: names and shapes only.
 */
import type { TensorInfo } from '../checkpoint';

export type PairStyle = 'peft' | 'peft-embedding' | 'loralib' | 'kohya' | 'diffusers-legacy';

export interface LoraPair {
  /** The module part of the key as stored (everything before the LoRA suffix). */
  prefix: string;
  style: PairStyle;
  a: TensorInfo;
  b: TensorInfo;
  alphaKey: string | null;
  magnitudeKey: string | null;
  loraBiasKey: string | null;
}

export interface Classification {
  pairs: LoraPair[];
  /** Tensors that are not part of any LoRA pair (heads, biases, base weights of a full state dict, unknown extras). */
  others: TensorInfo[];
  /** LoRA factors without their partner. */
  orphans: string[];
  /** LyCORIS/other non-LoRA adapter tensors we recognise but cannot treat as plain LoRA. */
  unsupported: string[];
}

interface Suffix { re: RegExp; side: 'A' | 'B'; style: PairStyle }

// Order matters: more specific suffixes first.
const FACTOR_SUFFIXES: readonly Suffix[] = [
  { re: /^(.*)\.lora_A(?:\.[^.]+)?\.weight$/, side: 'A', style: 'peft' },
  { re: /^(.*)\.lora_B(?:\.[^.]+)?\.weight$/, side: 'B', style: 'peft' },
  { re: /^(.*)\.lora_embedding_A(?:\.[^.]+)?$/, side: 'A', style: 'peft-embedding' },
  { re: /^(.*)\.lora_embedding_B(?:\.[^.]+)?$/, side: 'B', style: 'peft-embedding' },
  { re: /^(.*)\.lora_down\.weight$/, side: 'A', style: 'kohya' },
  { re: /^(.*)\.lora_up\.weight$/, side: 'B', style: 'kohya' },
  // `…processor.to_q_lora.down.weight` keeps its `_lora` in the prefix: the module name is rebuilt from it.
  { re: /^(.*_lora)\.down\.weight$/, side: 'A', style: 'diffusers-legacy' },
  { re: /^(.*_lora)\.up\.weight$/, side: 'B', style: 'diffusers-legacy' },
  { re: /^(.*?)(?:\.lora|\.lora_linear_layer)\.down\.weight$/, side: 'A', style: 'diffusers-legacy' },
  { re: /^(.*?)(?:\.lora|\.lora_linear_layer)\.up\.weight$/, side: 'B', style: 'diffusers-legacy' },
  { re: /^(.*)\.lora_A$/, side: 'A', style: 'loralib' },
  { re: /^(.*)\.lora_B$/, side: 'B', style: 'loralib' },
];

const MAGNITUDE = /^(.*)\.lora_magnitude_vector(?:\.[^.]+)?(?:\.weight)?$/;
const LORA_BIAS = /^(.*)\.lora_B(?:\.[^.]+)?\.bias$/;
const ALPHA = /^(.*)\.alpha$/;
const LYCORIS = /\.(hada_w[12]_[ab]|hada_t[12]|lokr_w[12](_[ab])?|lokr_t2|lora_mid\.weight|dora_scale|oft_blocks|oft_diag|b_norm\..*|w_norm\..*)$/;

export function classifyTensors(tensors: readonly TensorInfo[]): Classification {
  const partsA = new Map<string, { t: TensorInfo; style: PairStyle }>();
  const partsB = new Map<string, { t: TensorInfo; style: PairStyle }>();
  const magnitudes = new Map<string, string>();
  const biases = new Map<string, string>();
  const alphas = new Map<string, string>();
  const rest: TensorInfo[] = [];
  const unsupported: string[] = [];
  for (const t of tensors) {
    let hit = false;
    for (const s of FACTOR_SUFFIXES) {
      const m = s.re.exec(t.name);
      if (!m) continue;
      const key = `${s.style}|${m[1]}`;
      (s.side === 'A' ? partsA : partsB).set(key, { t, style: s.style });
      hit = true;
      break;
    }
    if (hit) continue;
    let m = MAGNITUDE.exec(t.name);
    if (m) { magnitudes.set(m[1]!, t.name); continue; }
    m = LORA_BIAS.exec(t.name);
    if (m) { biases.set(m[1]!, t.name); continue; }
    m = ALPHA.exec(t.name);
    if (m && t.shape.reduce((p, x) => p * x, 1) === 1) { alphas.set(m[1]!, t.name); continue; }
    if (LYCORIS.test(t.name)) { unsupported.push(t.name); continue; }
    rest.push(t);
  }
  const pairs: LoraPair[] = [];
  const orphans: string[] = [];
  for (const [key, a] of partsA) {
    const b = partsB.get(key);
    if (!b) { orphans.push(a.t.name); continue; }
    partsB.delete(key);
    const prefix = key.slice(key.indexOf('|') + 1);
    pairs.push({
      prefix,
      style: a.style,
      a: a.t,
      b: b.t,
      alphaKey: alphas.get(prefix) ?? null,
      magnitudeKey: magnitudes.get(prefix) ?? null,
      loraBiasKey: biases.get(prefix) ?? null,
    });
    alphas.delete(prefix);
    magnitudes.delete(prefix);
    biases.delete(prefix);
  }
  for (const b of partsB.values()) orphans.push(b.t.name);
  // α scalars whose module name differs from the factor prefix (diffusers legacy `<module>.alpha`) stay available.
  const byName = new Map(tensors.map((t) => [t.name, t]));
  for (const k of [...alphas.values(), ...magnitudes.values(), ...biases.values()]) rest.push(byName.get(k)!);
  return { pairs, others: rest, orphans, unsupported };
}

export const KOHYA_PREFIX = /^(lora_unet|lora_te\d?|lora_transformer)_/;
export const DIFFUSERS_COMPONENTS = ['unet', 'text_encoder', 'text_encoder_2', 'text_encoder_3', 'transformer', 'prior'] as const;
export const PEFT_PREFIX = 'base_model.model.';
