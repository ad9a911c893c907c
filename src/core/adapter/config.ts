/** Adapter configs (adapter_config.json, lora_config.json, embedded diffusers metadata) and what we know of their keys. */
import { readFileSync } from 'node:fs';
import { formatError, ioError } from '../errors';

export type Config = Record<string, unknown>;

/**
 * Every LoraConfig/PeftConfig field up to PEFT 0.19/0.20, plus early-PEFT MergedLinear and loralib fields. Anything
 * else is reported (UnknownConfigKey) rather than silently ignored, since it may change the merge.
 */
export const KNOWN_CONFIG_KEYS: ReadonlySet<string> = new Set([
  // PeftConfigMixin / PeftConfig
  'peft_type', 'task_type', 'peft_version', 'auto_mapping', 'base_model_name_or_path', 'revision', 'inference_mode',
  // LoraConfig
  'r', 'target_modules', 'exclude_modules', 'lora_alpha', 'lora_dropout', 'fan_in_fan_out', 'bias', 'use_rslora',
  'modules_to_save', 'init_lora_weights', 'layers_to_transform', 'layers_pattern', 'rank_pattern', 'alpha_pattern',
  'megatron_config', 'megatron_core', 'trainable_token_indices', 'loftq_config', 'eva_config', 'corda_config',
  'use_dora', 'use_qalora', 'qalora_group_size', 'layer_replication', 'runtime_config', 'lora_bias',
  'target_parameters', 'arrow_config', 'ensure_weight_tying', 'alora_invocation_tokens', 'use_bdlora', 'bdlora_config',
  'lora_ga_config',
  // early PEFT (MergedLinear) and loralib-style configs
  'enable_lora', 'merge_weights', 'format',
]);

export function unknownConfigKeys(cfg: Config): string[] {
  return Object.keys(cfg).filter((k) => !KNOWN_CONFIG_KEYS.has(k));
}

export function readConfigFile(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw ioError('ConfigUnreadable', `cannot read config: ${(e as Error).message}`, path);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw formatError('ConfigJson', `not valid JSON: ${(e as Error).message}`, path);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw formatError('ConfigJson', 'the config must be a JSON object', path);
  return v as Config;
}

export function num(cfg: Config | null, key: string): number | undefined {
  const v = cfg?.[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function bool(cfg: Config | null, key: string): boolean | undefined {
  const v = cfg?.[key];
  return typeof v === 'boolean' ? v : undefined;
}

export function str(cfg: Config | null, key: string): string | undefined {
  const v = cfg?.[key];
  return typeof v === 'string' ? v : undefined;
}

export function numberRecord(cfg: Config | null, key: string): Record<string, number> {
  const v = cfg?.[key];
  if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (typeof x === 'number') out[k] = x;
  return out;
}

export function boolList(cfg: Config | null, key: string): boolean[] | undefined {
  const v = cfg?.[key];
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'boolean') ? (v as boolean[]) : undefined;
}

export function stringList(cfg: Config | null, key: string): string[] | undefined {
  const v = cfg?.[key];
  if (typeof v === 'string') return undefined;
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
}

/**
 * diffusers embeds the PEFT config as JSON in `__metadata__["lora_adapter_metadata"]`, either flat or packed per
 * component (`"unet.r"`, `"text_encoder.lora_alpha"`, …). Returns one config per component prefix ('' = flat).
 */
export function embeddedConfigs(metadata: Readonly<Record<string, string>> | null, file: string): Map<string, Config> {
  const out = new Map<string, Config>();
  const raw = metadata?.['lora_adapter_metadata'];
  if (raw === undefined) return out;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw formatError('ConfigJson', '__metadata__["lora_adapter_metadata"] is not valid JSON', file);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return out;
  const obj = v as Config;
  if ('r' in obj || 'lora_alpha' in obj || 'peft_type' in obj) {
    out.set('', obj);
    return out;
  }
  for (const [k, x] of Object.entries(obj)) {
    const dot = k.indexOf('.');
    if (dot < 0) continue;
    const comp = k.slice(0, dot);
    if (!out.has(comp)) out.set(comp, {});
    out.get(comp)![k.slice(dot + 1)] = x;
  }
  return out;
}
