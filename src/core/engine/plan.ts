/**
 * The merge plan: for every base tensor, what happens to it. Pure (no I/O), so every refusal — a missing base key, a
 * shape that does not fit, an unknown α, a quantized base — happens before a single output byte is written.
 */
import type { Adapter, AdapterLayer, AdapterWarning, ReplacedTensor } from '../adapter/types';
import type { Checkpoint, TensorInfo } from '../checkpoint';
import type { Dtype } from '../dtype';
import { inputError, unsupportedError } from '../errors';

export interface PlanAdapter {
  adapter: Adapter;
  /** Multiplier wᵢ (unmerge plans use −1). */
  weight: number;
}

/** One low-rank term Σ wᵢ·sᵢ·XᵢYᵢ on a base tensor. */
export interface PlannedUpdate {
  adapterIndex: number;
  layer: AdapterLayer;
  weight: number;
  scaling: number;
}

/** A full tensor from the adapter that takes the base tensor's place (modules_to_save, heads, saved biases). */
export interface PlannedReplacement {
  adapterIndex: number;
  tensor: ReplacedTensor;
}

/** `lora_B.bias` (PEFT lora_bias): adds w·s·bias to the base bias. */
export interface PlannedBiasAdd {
  adapterIndex: number;
  layer: AdapterLayer;
  /** Adapter tensor name of lora_B.bias. */
  key: string;
  weight: number;
  scaling: number;
}

export interface TensorPlan {
  baseKey: string;
  info: TensorInfo;
  /** Applied first: the starting value instead of the base tensor. */
  replacement: PlannedReplacement | null;
  updates: PlannedUpdate[];
  /** At most one DoRA layer per tensor; when set, `updates` is empty (mixing is refused). */
  dora: PlannedUpdate | null;
  biasAdds: PlannedBiasAdd[];
}

export interface MergePlan {
  /** Only the tensors that change, keyed by base tensor name. */
  tensors: Map<string, TensorPlan>;
  warnings: AdapterWarning[];
}

/** Dtypes whose stored values can be read, changed and rounded once without a quantizer. */
const MERGEABLE: readonly Dtype[] = ['F32', 'F16', 'BF16', 'F64'];

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;
const prod = (xs: readonly number[]) => xs.reduce((p, x) => p * x, 1);

/** The shape of ΔW in the base tensor's storage orientation (conv: out, in, k…), as implied by the layer. */
export function updateShape(layer: AdapterLayer): number[] {
  switch (layer.kind) {
    case 'linear':
    case 'merged-linear':
      return layer.fanInFanOut ? [layer.inFeatures, layer.outFeatures] : [layer.outFeatures, layer.inFeatures];
    case 'embedding':
      return [layer.aShape[1]!, layer.bShape[0]!];
    case 'conv':
      return [layer.outFeatures, ...layer.aShape.slice(1)];
  }
}

/**
 * Whether ΔW fits the base tensor. Trailing 1-dims may differ (kohya stores 1×1 conv factors for Linear weights and
 * vice versa), so rows and flattened columns are compared, and kernels exactly when both sides have them.
 */
function shapeFits(base: readonly number[], upd: readonly number[]): boolean {
  if (base.length < 2) return false;
  if (base[0] !== upd[0] || prod(base.slice(1)) !== prod(upd.slice(1))) return false;
  if (base.length === upd.length) return base.every((d, i) => d === upd[i]);
  const strip = (s: readonly number[]) => {
    const t = [...s];
    while (t.length > 2 && t[t.length - 1] === 1) t.pop();
    return t;
  };
  const a = strip(base);
  const b = strip(upd);
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Equal up to size-1 dims (a head saved as [n, 1] for a base [n] is the same tensor). */
function sameShape(a: readonly number[], b: readonly number[]): boolean {
  const squeeze = (s: readonly number[]) => s.filter((d) => d !== 1);
  const x = squeeze(a);
  const y = squeeze(b);
  return prod(a) === prod(b) && x.length === y.length && x.every((d, i) => d === y[i]);
}

function isTranspose(a: readonly number[], b: readonly number[]): boolean {
  return a.length === 2 && b.length === 2 && a[0] === b[1] && a[1] === b[0] && a[0] !== a[1];
}

function checkMergeableDtype(info: TensorInfo, adapter: Adapter, what: string): void {
  if (MERGEABLE.includes(info.dtype)) return;
  throw unsupportedError(
    'QuantizedBase',
    `${info.name} is ${info.dtype}: quantized/F8 base tensors cannot be merged exactly (${what} from ${adapter.path}); dequantize the base to F16/BF16/F32 first`,
  );
}

function refuseUnmergeable(adapter: Adapter): void {
  const cfg = adapter.config ?? {};
  const alora = cfg['alora_invocation_tokens'];
  if (alora !== undefined && alora !== null && !(Array.isArray(alora) && alora.length === 0)) {
    throw unsupportedError(
      'ALoraMerge',
      'this is an aLoRA adapter (alora_invocation_tokens): it only activates after its invocation tokens, so it cannot be merged into the base weights',
      adapter.configPath ?? adapter.path,
    );
  }
}

function baseTensor(base: Checkpoint, key: string | null, adapter: Adapter, what: string): TensorInfo {
  if (key === null) {
    throw inputError('UnmappedLayer', `${what} could not be mapped to a base tensor; check that the base belongs to this adapter`, adapter.path);
  }
  const info = base.get(key);
  if (!info) {
    throw inputError(
      'BaseKeyMissing',
      `${what} updates ${key}, which the base ${base.path} does not contain; is this the base model the adapter was trained on?`,
      adapter.path,
    );
  }
  return info;
}

export function planMerge(base: Checkpoint, adapters: readonly PlanAdapter[]): MergePlan {
  const tensors = new Map<string, TensorPlan>();
  const warnings: AdapterWarning[] = [];
  const entry = (info: TensorInfo): TensorPlan => {
    let p = tensors.get(info.name);
    if (!p) {
      p = { baseKey: info.name, info, replacement: null, updates: [], dora: null, biasAdds: [] };
      tensors.set(info.name, p);
    }
    return p;
  };

  adapters.forEach(({ adapter, weight }, adapterIndex) => {
    refuseUnmergeable(adapter);
    warnings.push(...adapter.warnings);
    if (!Number.isFinite(weight)) throw inputError('BadWeight', `adapter weight ${weight} is not a finite number`, adapter.path);

    for (const layer of adapter.layers) {
      const info = baseTensor(base, layer.baseKey, adapter, `layer ${layer.module}`);
      if (layer.scaling === null || !Number.isFinite(layer.scaling)) {
        throw inputError(
          'AlphaUnknown',
          `${layer.module}: lora_alpha is not stored in the adapter, so the scaling α/r is unknown; pass --alpha or a config (lora_config.json / adapter_config.json)`,
          adapter.path,
        );
      }
      const upd = updateShape(layer);
      if (!shapeFits(info.shape, upd)) {
        const hint = isTranspose(info.shape, upd) ? ' — fan_in_fan_out mismatch?' : '';
        throw inputError(
          'ShapeMismatch',
          `${info.name} is ${fmt(info.shape)} but the adapter's update is ${fmt(upd)}${hint}`,
          adapter.path,
        );
      }
      checkMergeableDtype(info, adapter, `layer ${layer.module}`);
      const p = entry(info);
      const planned: PlannedUpdate = { adapterIndex, layer, weight, scaling: layer.scaling };
      if (layer.magnitudeKey) {
        if (p.dora) {
          throw unsupportedError(
            'MultipleDora',
            `${info.name} gets DoRA updates from two adapters; merging several DoRA adapters into one module is not supported (each renormalises the rows) — merge them one at a time into separate outputs`,
            adapter.path,
          );
        }
        p.dora = planned;
      } else {
        p.updates.push(planned);
      }
      if (p.dora && p.updates.length > 0) {
        throw unsupportedError(
          'DoraMixed',
          `${info.name} gets a DoRA update and plain LoRA updates; the result would depend on their order, so this combination is refused — merge them one at a time`,
          adapter.path,
        );
      }
      if (layer.loraBiasKey) {
        const biasKey = info.name.replace(/\.weight$/, '.bias');
        const bias = biasKey !== info.name ? base.get(biasKey) : undefined;
        if (!bias) {
          throw inputError('LoraBiasNoBase', `${layer.module} has lora_B.bias (lora_bias=true) but the base has no ${biasKey} to add it to`, adapter.path);
        }
        if (prod(bias.shape) !== layer.outFeatures) {
          throw inputError('ShapeMismatch', `${biasKey} is ${fmt(bias.shape)} but the adapter's lora_B.bias has ${layer.outFeatures} values`, adapter.path);
        }
        checkMergeableDtype(bias, adapter, `lora_B.bias of ${layer.module}`);
        entry(bias).biasAdds.push({ adapterIndex, layer, key: layer.loraBiasKey, weight, scaling: layer.scaling });
      }
    }

    for (const t of adapter.replacedTensors) {
      const info = baseTensor(base, t.baseKey, adapter, `full tensor ${t.key} (${t.reason})`);
      if (!sameShape(info.shape, t.shape)) {
        throw inputError(
          'ShapeMismatch',
          `${info.name} is ${fmt(info.shape)} but the adapter's replacement ${t.key} is ${fmt(t.shape)} (different vocabulary or label count?)`,
          adapter.path,
        );
      }
      if (!MERGEABLE.includes(t.dtype) && t.dtype !== info.dtype) {
        throw unsupportedError('ReplacementDtype', `${t.key} is ${t.dtype} but the base's ${info.name} is ${info.dtype}; cannot convert`, adapter.path);
      }
      if (!MERGEABLE.includes(info.dtype) && t.dtype !== info.dtype) {
        throw unsupportedError('ReplacementDtype', `${info.name} is ${info.dtype}; the replacement ${t.key} (${t.dtype}) cannot be converted to it`, adapter.path);
      }
      const p = entry(info);
      if (p.replacement) {
        const prev = adapters[p.replacement.adapterIndex]!.adapter;
        const same = prev.weightsPath === adapter.weightsPath && p.replacement.tensor.key === t.key;
        if (!same) {
          throw inputError('ReplacementConflict', `${info.name} is replaced by both ${prev.path} and ${adapter.path}; a merge can only keep one of them`, adapter.path);
        }
        continue;
      }
      if (weight !== 1) {
        warnings.push({
          code: 'ReplacementUnweighted',
          message: `${t.key} replaces ${info.name} in full; the adapter weight ${weight} does not apply to it`,
          module: t.baseKey ?? undefined,
        });
      }
      p.replacement = { adapterIndex, tensor: t };
    }
  });

  for (const p of tensors.values()) {
    if (p.dora && p.dora.weight !== 1) {
      warnings.push({
        code: 'DoraWeighted',
        message: `${p.baseKey}: DoRA update scaled by weight ${p.dora.weight} before renormalisation; the magnitude vector is kept as trained`,
        module: p.dora.layer.module,
      });
    }
  }
  return { tensors, warnings };
}
