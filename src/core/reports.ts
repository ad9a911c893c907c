/**
 * The shapes every shell (CLI --json, extension, webview) consumes. Field names here are a public contract:
 * `lora-lens inspect --json` prints InspectReport; changing a name is a breaking change (document it in README).
 */
import type { AdapterFormat, AdapterLayer, AdapterWarning, ReplacedTensor } from './adapter/types';
import type { CheckpointFormat } from './checkpoint';
import type { Device } from './compute/backend';
import type { Dtype } from './dtype';

/** The adapter model's view of a layer (see AdapterLayer for each field), plus statistics. */
export interface LayerReport
  extends Pick<
    AdapterLayer,
    | 'module' | 'baseKey' | 'kind' | 'r' | 'alpha' | 'scaling' | 'scalingRule' | 'enableLora' | 'fanInFanOut'
    | 'inFeatures' | 'outFeatures' | 'dtype' | 'aShape' | 'bShape' | 'sources' | 'notes'
  > {
  dora: boolean;
  /** ‖ΔW‖_F including scaling (null when alpha unknown: then normBA is still given). */
  normDelta: number | null;
  /** ‖B·A‖_F without scaling. */
  normBA: number;
  /** ‖ΔW‖/‖W0‖ when a base is linked. */
  relNorm: number | null;
  /** Singular values of ΔW (scaled when alpha known), descending, at most r·groups. */
  singularValues: number[];
  /** exp(entropy of normalised σ²) — a soft count of the directions the update uses. */
  effectiveRank: number;
  hasNonFinite: boolean;
}

export interface TensorRow {
  name: string;
  dtype: Dtype;
  shape: number[];
  byteLength: number;
}

export interface InspectReport {
  /** 'adapter' when LoRA layers were found, 'checkpoint' for a plain (e.g. base) checkpoint. */
  kind: 'adapter' | 'checkpoint';
  format: AdapterFormat | CheckpointFormat;
  path: string;
  weightsPath: string;
  configPath: string | null;
  baseModel: string | null;
  basePath: string | null;
  fileSize: number;
  parameterCount: number;
  layers: LayerReport[];
  replacedTensors: ReplacedTensor[];
  warnings: AdapterWarning[];
  /** All tensors of the file (always filled; the only content for kind 'checkpoint'). */
  tensors: TensorRow[];
  metadata: Record<string, string> | null;
}

export interface MergeReport {
  out: string;
  outFiles: string[];
  device: string;
  deviceReport: string[];
  tensorsMerged: number;
  tensorsReplaced: number;
  tensorsCopied: number;
  bytesWritten: number;
  seconds: number;
  /** Per merged base tensor: which adapters (and scalings) went in. */
  modules: { baseKey: string; adapters: { path: string; weight: number; scaling: number }[] }[];
  warnings: AdapterWarning[];
}

export interface UnmergeReport {
  out: string;
  outFiles: string[];
  device: string;
  tensorsUnmerged: number;
  /** With --base: per layer max |restored − original| in ulps of the storage dtype, and absolute. */
  drift: { baseKey: string; maxUlps: number; maxAbs: number }[] | null;
  seconds: number;
  /** e.g. ReplacedNotRestored (a head the adapter replaced cannot be restored), ProvenanceMismatch. */
  warnings: AdapterWarning[];
}

export type Verdict = 'pass' | 'fail';

export interface ParityLayer {
  module: string;
  baseKey: string | null;
  pass: boolean;
  maxAbsDiff: number;
  tolerance: number;
  /** s* = ⟨W'−W0, ΔW⟩/⟨ΔW, ΔW⟩ over the adapter's declared ΔW (1.0 × scaling when merged correctly). */
  estimatedScaling: number | null;
  expectedScaling: number | null;
  /** One sentence when failing ("merged with scaling 4, config gives 2"), null when passing. */
  diagnosis: string | null;
  /**
   * What was checked; absent means 'forward' (probes through a low-rank layer). 'replaced': a full tensor the adapter
   * replaces (modules_to_save, heads, saved biases), compared element-wise with the adapter's copy; 'bias': a base bias
   * that gets s·lora_B.bias added. For both, `module` is the base tensor's name.
   */
  check?: 'forward' | 'replaced' | 'bias';
}

export interface ParityReport {
  pass: boolean;
  device: string;
  probes: number;
  seed: number;
  mergedPath: string | null;
  layers: ParityLayer[];
  seconds: number;
}

export interface DiffModule {
  module: string;
  status: 'both' | 'only-a' | 'only-b';
  rA: number | null; rB: number | null;
  alphaA: number | null; alphaB: number | null;
  scalingA: number | null; scalingB: number | null;
  normA: number | null; normB: number | null;
  /** ⟨ΔW_A, ΔW_B⟩_F / (‖ΔW_A‖‖ΔW_B‖) from r×r products. */
  cosine: number | null;
  /** Grassmann similarity of the top-k left singular subspaces (LoRA paper §7), k = min(rA, rB). */
  subspaceSimilarity: number | null;
  shapeMismatch: boolean;
}

export interface DiffReport {
  a: string;
  b: string;
  modules: DiffModule[];
  summary: {
    both: number; onlyA: number; onlyB: number;
    meanCosine: number | null; minCosine: number | null;
    rankChanged: number; alphaChanged: number;
  };
}

export type { Device };
