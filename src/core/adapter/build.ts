/**
 * From classified tensor names + config (+ an optional base's tensor list) to AdapterLayers, replaced tensors and
 * warnings. Pure: every value read from a file (α scalars) comes in through `alphaValues`.
 */
import type { TensorInfo } from '../checkpoint';
import { formatError } from '../errors';
import type { AdapterFormat, AdapterLayer, AdapterWarning, LayerKind, Provenance, ReplacedTensor } from './types';
import { bool, boolList, type Config, num, numberRecord, str, stringList, unknownConfigKeys } from './config';
import { classifyTensors, DIFFUSERS_COMPONENTS, KOHYA_PREFIX, type LoraPair, PEFT_PREFIX } from './keys';
import { lookupPattern, matchesTargetItem, peftPatternMatches } from './patterns';
import { inferMergedMask } from './mergedLinear';
import { buildKohyaTable } from './kohyaNames';

export interface BuildOverrides {
  alpha?: number;
  r?: number;
  enableLora?: boolean[];
  fanInFanOut?: boolean;
}

export interface BaseInfo {
  readonly tensors: readonly TensorInfo[];
  get(name: string): TensorInfo | undefined;
}

export interface BuildInput {
  tensors: readonly TensorInfo[];
  metadata: Readonly<Record<string, string>> | null;
  /** adapter_config.json / lora_config.json / --config, already parsed. */
  config: Config | null;
  /** Per diffusers component ('' = applies to all), from `lora_adapter_metadata`. */
  embedded?: Map<string, Config>;
  overrides?: BuildOverrides;
  /** Values of α scalar tensors, by tensor name. */
  alphaValues?: ReadonlyMap<string, number>;
  base?: BaseInfo | null;
  /** For error messages. */
  file: string;
}

export interface BuildResult {
  format: AdapterFormat;
  layers: AdapterLayer[];
  replacedTensors: ReplacedTensor[];
  warnings: AdapterWarning[];
  /** Keys of α tensors the layers use (so they are not reported as leftovers). */
  alphaKeys: string[];
}

const GPT2_CONV1D = /(^|\.)(c_attn|c_proj|c_fc)$/;
const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

export function isLoraCheckpoint(tensors: readonly TensorInfo[]): boolean {
  return classifyTensors(tensors).pairs.length > 0;
}

function componentOf(prefix: string): string | null {
  const c = prefix.slice(0, prefix.indexOf('.'));
  return (DIFFUSERS_COMPONENTS as readonly string[]).includes(c) ? c : null;
}

function detectFormat(pairs: LoraPair[], others: readonly TensorInfo[], config: Config | null, metadata: BuildInput['metadata']): AdapterFormat {
  const count = (f: (p: LoraPair) => boolean) => pairs.filter(f).length;
  const kohya = count((p) => p.style === 'kohya' && KOHYA_PREFIX.test(p.prefix));
  const legacy = count((p) => p.style === 'diffusers-legacy');
  const loralib = count((p) => p.style === 'loralib');
  const peft = count((p) => p.style === 'peft' || p.style === 'peft-embedding');
  const best = Math.max(kohya, legacy, loralib, peft);
  if (kohya === best || (best === 0 && pairs.some((p) => p.style === 'kohya'))) return 'kohya';
  if (legacy === best) return 'diffusers';
  if (loralib === best) {
    const fullState = others.some((t) => t.name.endsWith('.weight'));
    return fullState ? 'loralib-full' : 'loralib';
  }
  const peftPairs = pairs.filter((p) => p.style === 'peft' || p.style === 'peft-embedding');
  if (peftPairs.some((p) => p.prefix.startsWith(PEFT_PREFIX))) {
    const merged = boolList(config, 'enable_lora') !== undefined || peftPairs.some((p) => p.b.shape.length === 3 && p.a.shape.length === 2);
    return merged ? 'peft-mergedlinear' : 'peft';
  }
  const diffusersish = peftPairs.some((p) => {
    const c = componentOf(p.prefix);
    return c !== null && (c !== 'transformer' || metadata?.['lora_adapter_metadata'] !== undefined || config === null);
  });
  return diffusersish ? 'diffusers' : 'peft';
}

interface Ctx {
  input: BuildInput;
  format: AdapterFormat;
  warnings: AdapterWarning[];
  warn(code: string, message: string, module?: string): void;
}

/** The name PEFT's pattern lookup sees: the module path relative to the (component) model. */
function relativeName(format: AdapterFormat, module: string): string {
  if (format === 'diffusers') {
    const c = componentOf(module);
    if (c) return module.slice(c.length + 1);
  }
  return module;
}

function dropBaseLayer(s: string): string {
  return s.replace(/\.base_layer(?=\.|$)/g, '');
}

/** diffusers legacy attention-processor names → module paths. */
function legacyModule(prefix: string): string {
  let m = prefix.replace(/\.processor\./, '.');
  const comp = componentOf(m);
  const te = comp !== null && comp.startsWith('text_encoder');
  m = m.replace(/\.(to_q|to_k|to_v|to_out)_lora$/, (_, n: string) => {
    if (te) return `.${{ to_q: 'q_proj', to_k: 'k_proj', to_v: 'v_proj', to_out: 'out_proj' }[n as 'to_q']}`;
    return n === 'to_out' ? '.to_out.0' : `.${n}`;
  });
  return m;
}

function moduleOf(format: AdapterFormat, p: LoraPair): string {
  if (p.style === 'diffusers-legacy') return legacyModule(p.prefix);
  if (p.prefix.startsWith(PEFT_PREFIX)) return p.prefix.slice(PEFT_PREFIX.length);
  return p.prefix;
}

function defaultBaseKey(format: AdapterFormat, module: string): string | null {
  if (format === 'kohya') return null;
  let m = dropBaseLayer(module);
  if (format === 'diffusers') {
    const c = componentOf(m);
    // A component's own checkpoint (unet/diffusion_pytorch_model.safetensors) has no component prefix.
    if (c && c !== 'transformer') m = m.slice(c.length + 1);
  }
  return `${m}.weight`;
}

/** Candidate base names, most likely first (diffusers: with and without the component prefix). */
function baseCandidates(format: AdapterFormat, module: string): string[] {
  const m = dropBaseLayer(module);
  const out = [`${m}.weight`];
  const c = componentOf(m);
  if (c) out.push(`${m.slice(c.length + 1)}.weight`);
  return format === 'diffusers' && c && c !== 'transformer' ? out.reverse() : out;
}

interface RawLayer {
  pair: LoraPair;
  layer: AdapterLayer;
  /** The config value of fan_in_fan_out before any base check. */
  fifoDeclared: boolean | undefined;
  /** MergedLinear whose mask still needs the base. */
  maskPending: boolean;
}

function configFor(ctx: Ctx, module: string): Config | null {
  if (ctx.format === 'diffusers' && ctx.input.embedded?.size) {
    const c = componentOf(module);
    return (c && ctx.input.embedded.get(c)) || ctx.input.embedded.get('') || ctx.input.config;
  }
  return ctx.input.config;
}

function buildLayer(ctx: Ctx, p: LoraPair): RawLayer {
  const { input, format } = ctx;
  const ov = input.overrides ?? {};
  const module = moduleOf(format, p);
  const cfg = configFor(ctx, module);
  const rel = relativeName(format, module);
  const a = p.a.shape, b = p.b.shape;
  const notes: string[] = [];
  const bad = (why: string) => formatError('LoraShape', `${module}: ${why} (A ${p.a.name} ${fmt(a)}, B ${p.b.name} ${fmt(b)})`, input.file);
  if (a.length < 2 || b.length < 2) throw bad('LoRA factors must have at least 2 dimensions');

  let kind: LayerKind;
  let r: number;
  let groups = 1;
  if (p.style === 'peft-embedding') {
    kind = 'embedding';
    r = a[0]!;
    if (b[1] !== r || a.length !== 2 || b.length !== 2) throw bad('embedding factors must be A (r, num_embeddings) and B (dim, r)');
  } else if (a.length >= 3) {
    kind = 'conv';
    r = a[0]!;
    if (b[1] !== r || b.slice(2).some((d) => d !== 1)) throw bad('conv factors must be A (r, in, k…) and B (out, r, 1…)');
  } else {
    r = b[1]!;
    if (b.slice(2).some((d) => d !== 1)) throw bad('lora_B has non-unit trailing dimensions');
    if (a[0] === r) {
      kind = 'linear';
    } else if (r > 0 && a[0]! % r === 0) {
      kind = 'merged-linear';
      groups = a[0]! / r;
    } else {
      throw bad(`lora_A has ${a[0]} rows, which is not a multiple of lora_B's ${r} columns`);
    }
  }

  // --- r as declared ---
  const isPeft = format === 'peft' || format === 'peft-mergedlinear' || format === 'diffusers';
  let declaredR: number | undefined = ov.r;
  if (declaredR === undefined && cfg) {
    const rank = lookupPattern(numberRecord(cfg, 'rank_pattern'), rel, num(cfg, 'r') ?? (isPeft ? 8 : undefined));
    declaredR = rank.value;
  }
  if (declaredR !== undefined && declaredR !== r && format !== 'kohya') {
    ctx.warn('RankMismatch', `${module}: the config declares r=${declaredR} but the tensors have r=${r}; using r=${r}`, module);
  }
  const rSource: Provenance = declaredR === r ? 'declared' : 'inferred';

  // --- alpha ---
  let alpha: number | null = null;
  let alphaSource: Provenance = 'unknown';
  let alphaKey: string | null = null;
  const alphaTensor = p.alphaKey ?? (format === 'diffusers' ? `${module}.alpha` : null);
  if (ov.alpha !== undefined) {
    alpha = ov.alpha;
    alphaSource = 'declared';
  } else if (alphaTensor && input.alphaValues?.has(alphaTensor)) {
    alpha = input.alphaValues.get(alphaTensor)!;
    alphaSource = 'declared';
    alphaKey = alphaTensor;
    if (alpha === 0) {
      // kohya: alpha 0/None at creation means alpha = r.
      alpha = r;
      alphaSource = 'default';
      notes.push('stored alpha is 0, which kohya treats as alpha = r');
    }
  } else if (cfg && (isPeft || format === 'loralib' || format === 'loralib-full')) {
    const pat = lookupPattern(numberRecord(cfg, 'alpha_pattern'), rel, undefined as number | undefined);
    if (pat.value !== undefined) {
      alpha = pat.value;
      alphaSource = 'declared';
    } else if (num(cfg, 'lora_alpha') !== undefined) {
      alpha = num(cfg, 'lora_alpha')!;
      alphaSource = 'declared';
    } else if (isPeft) {
      alpha = 8; // PEFT's LoraConfig default; a missing lora_alpha is 8, not r.
      alphaSource = 'default';
    }
  } else if (format === 'kohya' || format === 'diffusers') {
    alpha = r; // kohya: missing alpha → r; diffusers: no alpha in the file → scale 1.0.
    alphaSource = 'default';
  } else if (format === 'peft' || format === 'peft-mergedlinear') {
    alpha = 8;
    alphaSource = 'default';
    notes.push('no adapter_config.json: PEFT defaults assumed (lora_alpha 8)');
  }
  const rslora = isPeft && bool(cfg, 'use_rslora') === true;
  const scalingRule = rslora ? 'alpha/sqrt(r)' : 'alpha/r';
  const scaling = alpha === null ? null : rslora ? alpha / Math.sqrt(r) : alpha / r;
  if (alpha === null) notes.push('alpha is not stored in this file; pass --alpha (or a config) to know the scaling');

  // --- fan_in_fan_out ---
  const fifoDeclared = ov.fanInFanOut ?? bool(cfg, 'fan_in_fan_out');
  let fanInFanOut = kind === 'linear' || kind === 'merged-linear' ? fifoDeclared ?? false : false;
  const fifoSource: Provenance = fifoDeclared === undefined ? 'default' : 'declared';
  if (kind !== 'linear' && kind !== 'merged-linear') fanInFanOut = false;

  // --- MergedLinear mask ---
  let enableLora: boolean[] | null = null;
  let maskSource: Provenance = 'unknown';
  let maskPending = false;
  const declaredMask = ov.enableLora ?? boolList(cfg, 'enable_lora');
  if (kind === 'merged-linear') {
    if (declaredMask && declaredMask.filter(Boolean).length === groups) {
      enableLora = [...declaredMask];
      maskSource = 'declared';
    } else {
      if (declaredMask) {
        ctx.warn('MaskMismatch', `${module}: enable_lora ${JSON.stringify(declaredMask)} enables ${declaredMask.filter(Boolean).length} blocks but the tensors hold ${groups} groups; inferring the mask instead`, module);
      }
      maskPending = true;
    }
  } else if (declaredMask && kind === 'linear' && declaredMask.filter(Boolean).length === 1 && declaredMask.length === 1) {
    enableLora = [...declaredMask];
    maskSource = 'declared';
  }
  const outPerGroup = b[0]! / groups;
  const outFeatures = kind === 'merged-linear' && enableLora ? outPerGroup * enableLora.length : b[0]!;
  if (kind === 'merged-linear' && !Number.isInteger(outPerGroup)) throw bad(`lora_B rows ${b[0]} are not divisible by the ${groups} groups`);

  const layer: AdapterLayer = {
    module,
    baseKey: defaultBaseKey(format, module),
    kind,
    r,
    alpha,
    scaling,
    scalingRule,
    enableLora,
    fanInFanOut,
    inFeatures: a[1]!,
    outFeatures,
    dtype: p.b.dtype,
    aKey: p.a.name,
    bKey: p.b.name,
    aShape: [...a],
    bShape: [...b],
    kernel: kind === 'conv' ? [...a.slice(2)] : [],
    magnitudeKey: p.magnitudeKey,
    loraBiasKey: p.loraBiasKey,
    alphaKey,
    sources: { r: rSource, alpha: alphaSource, enableLora: maskSource, fanInFanOut: fifoSource },
    notes,
  };
  if (kind === 'merged-linear' && !enableLora) layer.sources.enableLora = 'inferred';
  return { pair: p, layer, fifoDeclared, maskPending };
}

/** With or without a base: settle MergedLinear masks, orientation, kohya names; check shapes. */
function linkBase(ctx: Ctx, raws: RawLayer[]): void {
  const base = ctx.input.base ?? null;
  const kohya = base && ctx.format === 'kohya' ? buildKohyaTable(base.tensors) : null;
  const missing: string[] = [];
  const flips: { raw: RawLayer; to: boolean }[] = [];
  const squareUndecided: RawLayer[] = [];
  for (const raw of raws) {
    const L = raw.layer;
    let info: TensorInfo | undefined;
    if (base) {
      if (kohya) {
        const hit = kohya.map.get(L.module);
        if (hit === null) ctx.warn('KohyaAmbiguous', `${L.module}: several base tensors produce this kohya name`, L.module);
        if (hit) { L.baseKey = hit; info = base.get(hit); }
      } else {
        for (const c of baseCandidates(ctx.format, L.module)) {
          info = base.get(c);
          if (info) { L.baseKey = c; break; }
        }
      }
      if (!info) missing.push(L.module);
    }
    const bs = info?.shape;
    if (L.kind === 'merged-linear' && raw.maskPending) {
      const g = L.aShape[0]! / L.r;
      const outPerGroup = L.bShape[0]! / g;
      let out: number | null = null;
      if (bs && bs.length === 2) {
        const k = L.inFeatures;
        if (bs[0] === k && bs[1] !== k) out = bs[1]!;
        else if (bs[1] === k && bs[0] !== k) out = bs[0]!;
        else if (bs[0] === k && bs[1] === k) out = k;
      }
      const guess = inferMergedMask(g, outPerGroup, out);
      L.enableLora = guess.mask;
      L.sources.enableLora = guess.provenance;
      L.outFeatures = outPerGroup * guess.mask.length;
      if (guess.note) L.notes.push(guess.note);
    }
    if (!bs) continue;
    const what = `${L.module}: base ${info!.name} is ${fmt(bs)}`;
    if (L.kind === 'linear' || L.kind === 'merged-linear') {
      const d = L.outFeatures, k = L.inFeatures;
      if (bs.length !== 2 && !(bs.length === 4 && bs[2] === 1 && bs[3] === 1 && !L.fanInFanOut)) {
        ctx.warn('ShapeMismatch', `${what}, expected a 2-D weight for a linear LoRA (out ${d}, in ${k})`, L.module);
        continue;
      }
      const stored = bs.length === 4 ? 'outin' : bs[0] === d && bs[1] === k ? (d === k ? 'square' : 'outin') : bs[0] === k && bs[1] === d ? 'inout' : 'none';
      if (stored === 'none') {
        ctx.warn('ShapeMismatch', `${what}, which fits neither (out ${d}, in ${k}) nor (in, out)`, L.module);
      } else if (stored === 'square') {
        squareUndecided.push(raw);
      } else if ((stored === 'inout') !== L.fanInFanOut) {
        flips.push({ raw, to: stored === 'inout' });
      }
    } else if (L.kind === 'conv') {
      const exp = [L.outFeatures, ...L.aShape.slice(1)];
      const same = bs.length === exp.length && bs.every((x, i) => x === exp[i]);
      const squeezed = bs.length === 2 && exp.length === 4 && exp[2] === 1 && exp[3] === 1 && bs[0] === exp[0] && bs[1] === exp[1];
      if (!same && !squeezed) ctx.warn('ShapeMismatch', `${what}, expected ${fmt(exp)}`, L.module);
    } else if (L.kind === 'embedding') {
      const exp = [L.aShape[1]!, L.bShape[0]!];
      if (!(bs.length === 2 && bs[0] === exp[0] && bs[1] === exp[1])) ctx.warn('ShapeMismatch', `${what}, expected ${fmt(exp)} (num_embeddings, dim)`, L.module);
    }
  }
  // Orientation follows the base: PEFT itself forces fan_in_fan_out=True on Conv1D, and a transposed merge of a
  // non-square weight cannot be right. Square weights follow the decision made on their non-square siblings.
  const toTrue = flips.filter((f) => f.to), toFalse = flips.filter((f) => !f.to);
  for (const f of flips) applyFlip(ctx, f.raw, f.to, false);
  if (toTrue.length && !toFalse.length) {
    for (const raw of squareUndecided) if (!raw.layer.fanInFanOut && GPT2_CONV1D.test(raw.layer.module)) applyFlip(ctx, raw, true, true);
  }
  if (toTrue.length) {
    const first = toTrue[0]!.raw.layer.module;
    ctx.warn('FanInFanOutOnConv1D', `${toTrue.length} layer(s) (e.g. ${first}) have fan_in_fan_out=false but the base stores them (in, out) like GPT-2 Conv1D; PEFT forces fan_in_fan_out=true for these, and so does LoRA Lens`, first);
  }
  if (toFalse.length) {
    const first = toFalse[0]!.raw.layer.module;
    ctx.warn('FanInFanOutMismatch', `${toFalse.length} layer(s) (e.g. ${first}) have fan_in_fan_out=true but the base stores them (out, in) (an nn.Linear); the delta is applied untransposed to fit the base`, first);
  }
  if (missing.length) {
    const code = ctx.format === 'kohya' ? 'KohyaUnmapped' : 'BaseKeyMissing';
    ctx.warn(code, `${missing.length} adapted module(s) have no tensor in the base (e.g. ${missing.slice(0, 3).join(', ')})`, missing[0]);
  }
}

function applyFlip(ctx: Ctx, raw: RawLayer, to: boolean, fromSiblings: boolean): void {
  const L = raw.layer;
  L.fanInFanOut = to;
  L.sources.fanInFanOut = 'inferred';
  L.notes.push(
    fromSiblings
      ? `fan_in_fan_out=${to} inferred: square weight, its non-square siblings are stored ${to ? '(in, out)' : '(out, in)'}`
      : `fan_in_fan_out=${to} inferred from the base shape (config: ${raw.fifoDeclared ?? 'unset'})`,
  );
}

function nameWarnings(ctx: Ctx, raws: RawLayer[]): void {
  const { format } = ctx;
  const cfg = ctx.input.config;
  const base = ctx.input.base;
  if (!base && (format === 'peft' || format === 'loralib' || format === 'loralib-full')) {
    const suspects = raws.filter((x) => x.layer.kind === 'linear' && !x.layer.fanInFanOut && GPT2_CONV1D.test(x.layer.module));
    if (suspects.length) {
      const first = suspects[0]!.layer.module;
      ctx.warn('FanInFanOutOnConv1D', `fan_in_fan_out is false on ${suspects.length} layer(s) named like GPT-2 Conv1D (e.g. ${first}); if the base stores them (in, out), PEFT forces fan_in_fan_out=true — link the base to check`, first);
    }
  }
  const targets = stringList(cfg, 'target_modules');
  if (targets) {
    for (const item of targets) {
      const hits = raws.filter((x) => matchesTargetItem(relativeName(format, x.layer.module), item));
      const shapes = new Map<string, string>();
      for (const h of hits) shapes.set(`${h.layer.inFeatures}→${h.layer.outFeatures}`, h.layer.module);
      if (shapes.size > 1) {
        const ex = [...shapes.entries()].map(([s, m]) => `${m} (${s})`).join(', ');
        ctx.warn('AmbiguousTargetSuffix', `target_modules entry "${item}" matches modules of different shapes: ${ex}`);
      }
    }
  }
  for (const key of ['rank_pattern', 'alpha_pattern']) {
    for (const p of Object.keys(numberRecord(cfg, key))) {
      const hit = raws.some((x) => {
        const rel = relativeName(format, x.layer.module);
        return peftPatternMatches(p, rel) || p === rel;
      });
      if (!hit) ctx.warn('PatternMatchesNothing', `${key} key "${p}" matches no adapted module (PEFT rule: (.*\\.)?(${p})$ on the module name)`);
    }
  }
}

function configWarnings(ctx: Ctx): void {
  const cfg = ctx.input.config;
  if (!cfg) return;
  for (const k of unknownConfigKeys(cfg)) ctx.warn('UnknownConfigKey', `config key "${k}" is not a known PEFT/LoRA setting; it is ignored, check whether it changes the merge`);
  const alora = cfg['alora_invocation_tokens'];
  if (alora !== undefined && alora !== null && !(Array.isArray(alora) && alora.length === 0)) {
    ctx.warn('Unmergeable', 'aLoRA adapter (alora_invocation_tokens): it only activates after its invocation tokens and cannot be merged into base weights');
  }
  const init = cfg['init_lora_weights'];
  if (typeof init === 'string' && /^(pissa|olora|corda|loftq)/i.test(init)) {
    ctx.warn('MutatedBase', `init_lora_weights="${init}" changes the base weights at init: this adapter only fits the residual base it was trained on, unless it was converted (path_initial_model_for_weight_conversion)`);
  }
  const tti = cfg['trainable_token_indices'];
  if (tti !== undefined && tti !== null) ctx.warn('TrainableTokens', 'trainable_token_indices: token rows are stored as deltas (trainable_tokens_delta), which LoRA Lens does not merge');
  const tp = cfg['target_parameters'];
  if (Array.isArray(tp) && tp.length) ctx.warn('TargetParameters', 'target_parameters (LoRA on nn.Parameter, e.g. MoE experts) is not supported for merging');
  const lr = cfg['layer_replication'];
  if (Array.isArray(lr) && lr.length) ctx.warn('LayerReplication', 'layer_replication builds extra layers that share base weights; merging them into one checkpoint is not supported');
}

function replacedFromOthers(ctx: Ctx, others: readonly TensorInfo[], raws: RawLayer[], alphaKeys: Set<string>): ReplacedTensor[] {
  const { format } = ctx;
  const cfg = ctx.input.config;
  const out: ReplacedTensor[] = [];
  const leftovers: string[] = [];
  const biasMode = str(cfg, 'bias') ?? 'none';
  const mts = stringList(cfg, 'modules_to_save') ?? [];
  const loraModules = new Set(raws.map((r) => r.layer.module));
  for (const t of others) {
    if (alphaKeys.has(t.name)) continue;
    const mk = (baseKey: string | null, reason: ReplacedTensor['reason']) =>
      out.push({ key: t.name, baseKey, reason, shape: [...t.shape], dtype: t.dtype });
    if (format === 'loralib-full') { mk(t.name, 'full-state'); continue; }
    if (format === 'loralib') {
      if (t.name.endsWith('.bias')) mk(t.name, 'bias');
      else leftovers.push(t.name);
      continue;
    }
    if (format === 'kohya' || format === 'diffusers') { leftovers.push(t.name); continue; }
    // PEFT
    if (/\.trainable_tokens_(delta|original)/.test(t.name)) {
      ctx.warn('TrainableTokens', `${t.name}: trainable-token rows are deltas on selected embedding rows; not merged by LoRA Lens`);
      continue;
    }
    const hadMts = /\.modules_to_save\.[^.]+\./.test(t.name);
    const hadBaseLayer = /\.base_layer\./.test(t.name);
    let key = t.name.startsWith(PEFT_PREFIX) ? t.name.slice(PEFT_PREFIX.length) : t.name;
    key = dropBaseLayer(key.replace(/\.modules_to_save\.[^.]+(?=\.)/, '').replace(/\.original_module(?=\.)/, ''));
    const dot = key.lastIndexOf('.');
    const moduleName = dot > 0 ? key.slice(0, dot) : key;
    const param = dot > 0 ? key.slice(dot + 1) : '';
    const inMts = hadMts || mts.some((m) => matchesTargetItem(moduleName, m));
    if (inMts) mk(key, 'modules_to_save');
    else if (param === 'bias' && (biasMode === 'all' || biasMode === 'lora_only')) mk(key, 'bias');
    else if (hadBaseLayer && loraModules.has(moduleName) && param === 'bias') mk(key, 'bias');
    else if (hadBaseLayer || /(embed|wte|wpe|word_embeddings|shared)/.test(moduleName.split('.').pop() ?? '')) mk(key, 'embedding');
    else mk(key, 'head');
  }
  if (leftovers.length) {
    ctx.warn('UnrecognizedTensor', `${leftovers.length} tensor(s) are neither LoRA factors nor known full tensors and are ignored (e.g. ${leftovers.slice(0, 3).join(', ')})`);
  }
  if (biasMode === 'lora_only' && !out.some((t) => t.reason === 'bias')) {
    ctx.warn('BiasLoraOnlyMissing', 'bias="lora_only" but the file holds no bias tensors: the trained biases were not saved, so merged outputs will differ from the training-time model');
  } else if (biasMode === 'all' && !out.some((t) => t.reason === 'bias')) {
    ctx.warn('BiasAllMissing', 'bias="all" but the file holds no bias tensors');
  }
  return out;
}

export function buildAdapter(input: BuildInput): BuildResult {
  const cls = classifyTensors(input.tensors);
  if (cls.pairs.length === 0) {
    throw formatError('NotAnAdapter', 'no LoRA tensors found (lora_A/lora_B, lora_down/lora_up, lora.down/lora.up)', input.file);
  }
  const format = detectFormat(cls.pairs, cls.others, input.config, input.metadata);
  const warnings: AdapterWarning[] = [];
  const ctx: Ctx = {
    input, format, warnings,
    warn(code, message, module) { warnings.push(module === undefined ? { code, message } : { code, message, module }); },
  };
  configWarnings(ctx);
  if (cls.orphans.length) ctx.warn('OrphanFactor', `${cls.orphans.length} LoRA factor(s) without their partner are ignored (e.g. ${cls.orphans.slice(0, 3).join(', ')})`);
  if (cls.unsupported.length) ctx.warn('UnsupportedAdapterTensor', `${cls.unsupported.length} LyCORIS/DoRA-scale tensor(s) are not plain LoRA and are ignored (e.g. ${cls.unsupported.slice(0, 3).join(', ')})`);
  const raws = cls.pairs.map((p) => buildLayer(ctx, p));
  linkBase(ctx, raws);
  nameWarnings(ctx, raws);
  const alphaKeys = new Set<string>();
  for (const r of raws) if (r.layer.alphaKey) alphaKeys.add(r.layer.alphaKey);
  // α tensors we classified but did not use (diffusers `<component>.<module>.alpha`) are still α, not leftovers.
  for (const t of cls.others) if (/\.alpha$/.test(t.name) && t.shape.reduce((p, x) => p * x, 1) === 1 && format !== 'loralib-full' && !format.startsWith('peft')) alphaKeys.add(t.name);
  const replacedTensors = replacedFromOthers(ctx, cls.others, raws, alphaKeys);
  return { format, layers: raws.map((r) => r.layer), replacedTensors, warnings, alphaKeys: [...alphaKeys] };
}

/** Names of the α scalars a file holds (read them before buildAdapter). */
export function alphaTensorNames(tensors: readonly TensorInfo[]): string[] {
  return tensors.filter((t) => /\.alpha$/.test(t.name) && t.shape.reduce((p, x) => p * x, 1) === 1).map((t) => t.name);
}
