import type { Checkpoint } from '../checkpoint';
import type { Dtype } from '../dtype';

export type AdapterFormat =
  | 'peft' // adapter_config.json + adapter_model.safetensors|bin, or the file alone
  | 'peft-mergedlinear' // early PEFT MergedLinear (enable_lora in config, 3-D lora_B)
  | 'loralib' // <module>.lora_A / .lora_B state dict
  | 'loralib-full' // loralib full state dict (base weights + lora_A/B)
  | 'diffusers' // unet./text_encoder. PEFT-style keys or legacy .lora.down/.up
  | 'kohya'; // lora_unet_… lora_down/lora_up/alpha

export type LayerKind = 'linear' | 'merged-linear' | 'embedding' | 'conv';
export type ScalingRule = 'alpha/r' | 'alpha/sqrt(r)';
/** Where a value came from: a config/file states it, it follows from tensor shapes, a documented default, or nobody knows. */
export type Provenance = 'declared' | 'inferred' | 'default' | 'unknown';

export interface AdapterLayer {
  /** Module path relative to the model (e.g. `model.layers.0.self_attn.q_proj`, `transformer.h.0.attn.c_attn`). */
  module: string;
  /** The base tensor this layer changes (`<module>.weight`); null when it can only be found with a base (kohya without --base). */
  baseKey: string | null;
  kind: LayerKind;
  r: number;
  alpha: number | null;
  /** alpha/r or alpha/sqrt(r); null when alpha is unknown. */
  scaling: number | null;
  scalingRule: ScalingRule;
  /** MergedLinear only: which of len(enableLora) equal output blocks get an update. */
  enableLora: boolean[] | null;
  /** Base weight stored (in, out) (GPT-2 Conv1D): the delta is transposed. */
  fanInFanOut: boolean;
  inFeatures: number;
  outFeatures: number;
  dtype: Dtype;
  /** Adapter tensor names. */
  aKey: string;
  bKey: string;
  aShape: number[];
  bShape: number[];
  /** Conv kernel spatial dims ([] for non-conv). */
  kernel: number[];
  /** DoRA magnitude vector tensor name. */
  magnitudeKey: string | null;
  /** `lora_B.bias` (lora_bias=true): adds s·bias to the base bias. */
  loraBiasKey: string | null;
  /** kohya `<name>.alpha` tensor, when alpha comes from the file. */
  alphaKey: string | null;
  sources: { r: Provenance; alpha: Provenance; enableLora: Provenance; fanInFanOut: Provenance };
  /** Notes specific to this layer (e.g. "2-of-3 split ambiguous; q,v assumed"). */
  notes: string[];
}

export interface ReplacedTensor {
  /** Tensor name in the adapter file. */
  key: string;
  /** The base tensor it replaces (null if it cannot be mapped without a base). */
  baseKey: string | null;
  reason: 'modules_to_save' | 'head' | 'bias' | 'embedding' | 'full-state';
  shape: number[];
  dtype: Dtype;
}

export interface AdapterWarning {
  code: string;
  message: string;
  module?: string;
}

export interface Adapter {
  format: AdapterFormat;
  /** What the user named (folder or file). */
  path: string;
  /** The weights file. */
  weightsPath: string;
  /** The config that was used (path), if any. */
  configPath: string | null;
  config: Record<string, unknown> | null;
  checkpoint: Checkpoint;
  layers: AdapterLayer[];
  replacedTensors: ReplacedTensor[];
  warnings: AdapterWarning[];
  /** e.g. base_model_name_or_path from the config. */
  baseModel: string | null;
}

/** Overrides a user gives on the command line or in the inspector (loralib stores neither alpha nor masks). */
export interface AdapterOverrides {
  configPath?: string;
  alpha?: number;
  r?: number;
  enableLora?: boolean[];
  fanInFanOut?: boolean;
  base?: Checkpoint;
}
