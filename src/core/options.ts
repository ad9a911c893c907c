/** Options of the core entry points (the CLI flags and extension pickers map onto these one to one). */
import type { CancelToken, ProgressSink } from './cancel';
import type { Device } from './compute/backend';

/** Per-adapter overrides for what the files do not say (loralib stores neither α nor masks). */
export interface AdapterSpecOverrides {
  /** Explicit config JSON (adapter_config.json / lora_config.json style, plus `enable_lora`). */
  config?: string;
  alpha?: number;
  enableLora?: boolean[];
  fanInFanOut?: boolean;
}

export interface AdapterSpec extends AdapterSpecOverrides {
  /** Adapter file or folder. */
  path: string;
  /** Multiplier for multi-adapter merges (Σ wᵢ·sᵢ·BᵢAᵢ). Default 1. */
  weight?: number;
}

export interface InspectOptions extends AdapterSpecOverrides {
  /** Base checkpoint (file, folder or index.json): enables ‖ΔW‖/‖W0‖, kohya name mapping, split inference. */
  base?: string;
  /** Compute per-layer statistics (norms, singular values). Default true. */
  stats?: boolean;
  cancel?: CancelToken;
}

export type OutputDtype = 'keep' | 'f16' | 'bf16' | 'f32';

export interface MergeOptions {
  base: string;
  adapters: AdapterSpec[];
  /** Output file (single base) or folder (sharded base, or any base when it ends with a separator). */
  out: string;
  dtype?: OutputDtype;
  device?: Device;
  /** Replace an existing output (never an input). */
  overwrite?: boolean;
  cancel?: CancelToken;
  onProgress?: ProgressSink;
}

export interface UnmergeOptions {
  merged: string;
  adapter: AdapterSpec;
  out: string;
  /** The original base: report drift per layer. */
  base?: string;
  device?: Device;
  overwrite?: boolean;
  cancel?: CancelToken;
  onProgress?: ProgressSink;
}

export interface ParityOptions {
  base: string;
  adapter: AdapterSpec;
  /** Merged checkpoint to check; without it, the engine's own in-memory merge is checked. */
  merged?: string;
  probes?: number;
  seed?: number;
  device?: Device;
  /** Multiplies the derived tolerance (setting loraLens.toleranceFactor). Default 1. */
  toleranceFactor?: number;
  cancel?: CancelToken;
  onProgress?: ProgressSink;
}

export interface DiffOptions {
  a: AdapterSpec;
  b: AdapterSpec;
  base?: string;
  cancel?: CancelToken;
}
