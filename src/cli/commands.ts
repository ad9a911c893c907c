/** One function per CLI command: flags → core options → core call → human or JSON output. No logic of its own. */
import { inspect } from '../core';
import { merge } from '../core';
import { unmerge } from '../core';
import { parity } from '../core';
import { diff } from '../core';
import { inputError } from '../core';
import type { CancelToken, ProgressSink } from '../core';
import type { Device } from '../core';
import type { AdapterSpec, AdapterSpecOverrides, OutputDtype } from '../core';
import type { InspectReport } from '../core';
import { bool, helpText, list, num, parseAdapterArg, parseArgs, parseMask, str, type FlagSpec, type Parsed } from './args';
import { fmtBytes, fmtMask, fmtNum, renderTable } from './table';
import { progressSink } from './progress';

export interface Io {
  out: (s: string) => void;
  cancel: CancelToken;
  stderrIsTTY: boolean;
}

const overrideFlags: Record<string, FlagSpec> = {
  config: { type: 'string', placeholder: 'json', help: 'adapter/lora config (r, lora_alpha, enable_lora, fan_in_fan_out)' },
  alpha: { type: 'string', placeholder: 'N', help: 'lora_alpha when the checkpoint does not store it (loralib)' },
  'enable-lora': { type: 'string', placeholder: '1,0,1', help: 'MergedLinear block mask (also q,v)' },
  'fan-in-fan-out': { type: 'bool', help: 'base weights stored (in, out), e.g. GPT-2 Conv1D' },
};
const deviceFlag: FlagSpec = { type: 'string', placeholder: 'auto|cpu|webgpu|cuda|ts', help: 'compute device (default auto)' };
const jsonFlag: FlagSpec = { type: 'bool', help: 'machine-readable output (progress as JSON lines on stderr)' };
const helpFlag: FlagSpec = { type: 'bool', help: 'show this help' };

function overrides(p: Parsed): AdapterSpecOverrides {
  const o: AdapterSpecOverrides = {};
  const config = str(p, 'config');
  if (config !== undefined) o.config = config;
  const alpha = num(p, 'alpha');
  if (alpha !== undefined) o.alpha = alpha;
  const mask = str(p, 'enable-lora');
  if (mask !== undefined) o.enableLora = parseMask(mask);
  if (bool(p, 'fan-in-fan-out')) o.fanInFanOut = true;
  return o;
}

function device(p: Parsed): Device {
  const d = str(p, 'device') ?? 'auto';
  if (!['auto', 'cpu', 'webgpu', 'cuda', 'ts'].includes(d)) throw inputError('BadDevice', `--device must be auto, cpu, webgpu, cuda or ts — got '${d}'`);
  return d as Device;
}

function required(p: Parsed, name: string): string {
  const v = str(p, name);
  if (v === undefined) throw inputError('MissingFlag', `--${name} is required (see --help)`);
  return v;
}

/** Runs a long job with a progress bar (TTY) or JSON progress lines (--json), always clearing the bar after. */
async function withProgress<R>(p: Parsed, io: Io, job: (onProgress: ProgressSink) => Promise<R>): Promise<R> {
  const prog = progressSink(bool(p, 'json') ? 'json' : io.stderrIsTTY ? 'tty' : 'none');
  try {
    return await job(prog.sink);
  } finally {
    prog.done();
  }
}

// ---------------------------------------------------------------- inspect
const inspectSpec: Record<string, FlagSpec> = {
  base: { type: 'string', placeholder: 'file|folder', help: 'base checkpoint: ‖ΔW‖/‖W0‖, kohya names, split inference' },
  ...overrideFlags,
  'no-stats': { type: 'bool', help: 'skip norms and singular values (faster on huge adapters)' },
  json: jsonFlag,
  help: helpFlag,
};

export async function cmdInspect(argv: string[], io: Io): Promise<number> {
  const p = parseArgs(argv, inspectSpec);
  if (bool(p, 'help')) return io.out(helpText('Usage: lora-lens inspect <adapter file or folder> [options]', inspectSpec)), 0;
  const path = p.positional[0];
  if (!path || p.positional.length > 1) throw inputError('Usage', 'inspect takes exactly one adapter file or folder (see --help)');
  const base = str(p, 'base');
  const report = await inspect(path, { ...overrides(p), ...(base ? { base } : {}), stats: !bool(p, 'no-stats'), cancel: io.cancel });
  io.out(bool(p, 'json') ? JSON.stringify(orderedReport(report), null, 2) : renderInspect(report));
  return 0;
}

/** The documented field order: what a reader looks for first comes first; tensors (long) last. */
function orderedReport(r: InspectReport): InspectReport {
  const { kind, format, path, weightsPath, configPath, baseModel, basePath, fileSize, parameterCount, layers, replacedTensors, warnings, metadata, tensors } = r;
  return { kind, format, path, weightsPath, configPath, baseModel, basePath, fileSize, parameterCount, layers, replacedTensors, warnings, metadata, tensors };
}

export function renderInspect(r: InspectReport): string {
  const lines: string[] = [];
  lines.push(`${r.path}`);
  lines.push(`  format ${r.format} · ${r.kind === 'adapter' ? `${r.layers.length} LoRA layers` : `${r.tensors.length} tensors (no LoRA layers: a plain checkpoint)`} · ${fmtNum(r.parameterCount)} parameters · ${fmtBytes(r.fileSize)}`);
  if (r.baseModel) lines.push(`  base model ${r.baseModel}`);
  if (r.configPath) lines.push(`  config ${r.configPath}`);
  if (r.kind === 'checkpoint') {
    lines.push('');
    lines.push(renderTable(r.tensors, [
      { title: 'tensor', get: (t) => t.name, max: 72 },
      { title: 'dtype', get: (t) => t.dtype },
      { title: 'shape', get: (t) => `[${t.shape.join(', ')}]` },
      { title: 'size', get: (t) => fmtBytes(t.byteLength), align: 'right' },
    ]));
  } else {
    const ranks = r.layers.map((l) => l.r);
    const alphas = [...new Set(r.layers.map((l) => l.alpha))];
    lines.push(`  r ${Math.min(...ranks)}${Math.max(...ranks) !== Math.min(...ranks) ? `–${Math.max(...ranks)}` : ''} · α ${alphas.map((a) => (a === null ? 'unknown' : fmtNum(a))).join('/')} · scaling ${[...new Set(r.layers.map((l) => l.scalingRule))].join('/')}`);
    lines.push('');
    const withBase = r.layers.some((l) => l.relNorm !== null);
    lines.push(renderTable(r.layers, [
      { title: 'module', get: (l) => l.module, max: 60 },
      { title: 'kind', get: (l) => l.kind + (l.dora ? '+dora' : '') },
      { title: 'r', get: (l) => String(l.r), align: 'right' },
      { title: 'α', get: (l) => (l.alpha === null ? '?' : fmtNum(l.alpha)) + (l.sources.alpha === 'default' ? '*' : ''), align: 'right' },
      { title: 'scaling', get: (l) => (l.scaling === null ? '?' : fmtNum(l.scaling)), align: 'right' },
      { title: 'mask', get: (l) => fmtMask(l.enableLora) + (l.enableLora && l.sources.enableLora === 'inferred' ? '?' : '') },
      { title: 'fifo', get: (l) => (l.fanInFanOut ? 'yes' : '') },
      { title: 'in×out', get: (l) => `${l.inFeatures}×${l.outFeatures}` },
      { title: 'dtype', get: (l) => l.dtype },
      { title: '‖ΔW‖', get: (l) => fmtNum(l.normDelta ?? l.normBA), align: 'right' },
      ...(withBase ? [{ title: '‖ΔW‖/‖W0‖', get: (l: InspectReport['layers'][number]) => fmtNum(l.relNorm), align: 'right' as const }] : []),
      { title: 'eff.rank', get: (l) => fmtNum(l.effectiveRank, 2), align: 'right' },
    ]));
    if (r.layers.some((l) => l.alpha === null)) lines.push('\n  ? α is not stored in this checkpoint: pass --alpha N or --config lora_config.json (scaling and ‖ΔW‖ use α when known; ‖B·A‖ shown otherwise).');
    if (r.layers.some((l) => l.sources.alpha === 'default')) lines.push('  * α not stated anywhere: the format\'s documented default was used.');
    const notes = [...new Set(r.layers.flatMap((l) => l.notes))];
    for (const n of notes) lines.push(`  note: ${n}`);
  }
  if (r.replacedTensors.length) {
    lines.push('');
    lines.push(`Full tensors that REPLACE base tensors on merge (${r.replacedTensors.length}):`);
    for (const t of r.replacedTensors) lines.push(`  ${t.key} → ${t.baseKey ?? '?'} [${t.shape.join(', ')}] ${t.dtype} (${t.reason})`);
  }
  if (r.warnings.length) {
    lines.push('');
    lines.push('Warnings:');
    for (const w of r.warnings) lines.push(`  ⚠ ${w.message}${w.module ? ` (${w.module})` : ''} [${w.code}]`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------- merge
const mergeSpec: Record<string, FlagSpec> = {
  base: { type: 'string', placeholder: 'file|folder', help: 'base checkpoint (.safetensors, sharded folder or index.json)' },
  adapter: { type: 'list', placeholder: 'path[:weight]', help: 'adapter to merge (repeatable; weight multiplies its ΔW)' },
  out: { type: 'string', placeholder: 'file|folder', help: 'output .safetensors (folder for sharded bases)' },
  ...overrideFlags,
  dtype: { type: 'string', placeholder: 'keep|f16|bf16|f32', help: 'output dtype of floating tensors (default keep)' },
  device: deviceFlag,
  force: { type: 'bool', help: 'replace an existing output (never an input)' },
  json: jsonFlag,
  help: helpFlag,
};

function adapterSpecs(p: Parsed, shared: AdapterSpecOverrides): AdapterSpec[] {
  const adapters = list(p, 'adapter');
  if (adapters.length === 0) throw inputError('MissingFlag', '--adapter is required (see --help)');
  return adapters.map((a) => ({ ...parseAdapterArg(a), ...shared }));
}

export async function cmdMerge(argv: string[], io: Io): Promise<number> {
  const p = parseArgs(argv, mergeSpec);
  if (bool(p, 'help')) return io.out(helpText('Usage: lora-lens merge --base <b> --adapter <a>[:weight] [--adapter ...] --out <o> [options]', mergeSpec)), 0;
  if (p.positional.length) throw inputError('Usage', `unexpected argument '${p.positional[0]}' (see --help)`);
  const dtype = (str(p, 'dtype') ?? 'keep') as OutputDtype;
  if (!['keep', 'f16', 'bf16', 'f32'].includes(dtype)) throw inputError('BadDtype', `--dtype must be keep, f16, bf16 or f32 — got '${dtype}'`);
  const report = await withProgress(p, io, (onProgress) =>
    merge({
      base: required(p, 'base'),
      adapters: adapterSpecs(p, overrides(p)),
      out: required(p, 'out'),
      dtype,
      device: device(p),
      overwrite: bool(p, 'force'),
      cancel: io.cancel,
      onProgress,
    }),
  );
  if (bool(p, 'json')) io.out(JSON.stringify(report, null, 2));
  else {
    io.out(`merged → ${report.out}`);
    io.out(`  ${report.tensorsMerged} tensors merged, ${report.tensorsReplaced} replaced, ${report.tensorsCopied} copied · ${fmtBytes(report.bytesWritten)} in ${report.seconds.toFixed(2)} s on ${report.device}`);
    for (const l of report.deviceReport) io.out(`  device: ${l}`);
    for (const w of report.warnings) io.out(`  ⚠ ${w.message}`);
  }
  return 0;
}

// ---------------------------------------------------------------- unmerge
const unmergeSpec: Record<string, FlagSpec> = {
  merged: { type: 'string', placeholder: 'file|folder', help: 'merged checkpoint' },
  adapter: { type: 'string', placeholder: 'path', help: 'the adapter that was merged into it' },
  out: { type: 'string', placeholder: 'file|folder', help: 'output (the restored base)' },
  base: { type: 'string', placeholder: 'file|folder', help: 'the original base: report drift per layer (ulps)' },
  ...overrideFlags,
  device: deviceFlag,
  force: { type: 'bool', help: 'replace an existing output (never an input)' },
  json: jsonFlag,
  help: helpFlag,
};

export async function cmdUnmerge(argv: string[], io: Io): Promise<number> {
  const p = parseArgs(argv, unmergeSpec);
  if (bool(p, 'help')) return io.out(helpText('Usage: lora-lens unmerge --merged <m> --adapter <a> --out <o> [--base <original>] [options]', unmergeSpec)), 0;
  if (p.positional.length) throw inputError('Usage', `unexpected argument '${p.positional[0]}' (see --help)`);
  const base = str(p, 'base');
  const report = await withProgress(p, io, (onProgress) =>
    unmerge({
      merged: required(p, 'merged'),
      adapter: { path: required(p, 'adapter'), ...overrides(p) },
      out: required(p, 'out'),
      ...(base ? { base } : {}),
      device: device(p),
      overwrite: bool(p, 'force'),
      cancel: io.cancel,
      onProgress,
    }),
  );
  if (bool(p, 'json')) io.out(JSON.stringify(report, null, 2));
  else {
    io.out(`unmerged → ${report.out}  (${report.tensorsUnmerged} tensors, ${report.seconds.toFixed(2)} s on ${report.device})`);
    for (const w of report.warnings) io.out(`  ⚠ ${w.message} [${w.code}]`);
    if (report.drift) {
      io.out('');
      io.out(renderTable(report.drift, [
        { title: 'tensor', get: (d) => d.baseKey, max: 64 },
        { title: "max drift (ulps of W')", get: (d) => fmtNum(d.maxUlps), align: 'right' },
        { title: 'max |Δ|', get: (d) => fmtNum(d.maxAbs), align: 'right' },
      ]));
    }
  }
  return 0;
}

// ---------------------------------------------------------------- parity
const paritySpec: Record<string, FlagSpec> = {
  base: { type: 'string', placeholder: 'file|folder', help: 'base checkpoint' },
  adapter: { type: 'string', placeholder: 'path', help: 'adapter' },
  merged: { type: 'string', placeholder: 'file|folder', help: 'merged checkpoint to check (default: check an in-memory merge)' },
  ...overrideFlags,
  probes: { type: 'string', placeholder: 'N', help: 'random input vectors per layer (default 64)' },
  seed: { type: 'string', placeholder: 'N', help: 'PRNG seed for the probes (default 0)' },
  'tolerance-factor': { type: 'string', placeholder: 'x', help: 'multiply the derived tolerance (default 1)' },
  device: deviceFlag,
  json: jsonFlag,
  help: helpFlag,
};

export async function cmdParity(argv: string[], io: Io): Promise<number> {
  const p = parseArgs(argv, paritySpec);
  if (bool(p, 'help')) return io.out(helpText('Usage: lora-lens parity --base <b> --adapter <a> [--merged <m>] [options]\n\nExit status: 0 all layers pass, 1 some layer fails, 2 bad input.', paritySpec)), 0;
  if (p.positional.length) throw inputError('Usage', `unexpected argument '${p.positional[0]}' (see --help)`);
  const merged = str(p, 'merged');
  const report = await withProgress(p, io, (onProgress) =>
    parity({
      base: required(p, 'base'),
      adapter: { path: required(p, 'adapter'), ...overrides(p) },
      ...(merged ? { merged } : {}),
      probes: num(p, 'probes', { int: true, min: 1 }) ?? 64,
      seed: num(p, 'seed', { int: true, min: 0 }) ?? 0,
      toleranceFactor: num(p, 'tolerance-factor', { min: 0 }) ?? 1,
      device: device(p),
      cancel: io.cancel,
      onProgress,
    }),
  );
  if (bool(p, 'json')) io.out(JSON.stringify(report, null, 2));
  else {
    io.out(renderTable(report.layers, [
      // Rows that are not forward probes name the base tensor; the marker says what was compared with it.
      { title: 'layer', get: (l) => (l.check === 'replaced' ? `${l.module} (replaced)` : l.check === 'bias' ? `${l.module} (+lora_B.bias)` : l.module), max: 60 },
      { title: 'max |diff|', get: (l) => fmtNum(l.maxAbsDiff), align: 'right' },
      { title: 'tolerance', get: (l) => fmtNum(l.tolerance), align: 'right' },
      { title: 'verdict', get: (l) => (l.pass ? 'pass' : 'FAIL') },
      { title: 'diagnosis', get: (l) => l.diagnosis ?? '' },
    ]));
    const failed = report.layers.filter((l) => !l.pass).length;
    io.out(`\n${report.pass ? '✓ parity holds' : `✗ ${failed} of ${report.layers.length} layers fail`} · ${report.probes} probes, seed ${report.seed}, ${report.mergedPath ? `merged file ${report.mergedPath}` : 'in-memory merge'} · ${report.seconds.toFixed(2)} s on ${report.device}`);
  }
  return report.pass ? 0 : 1;
}

// ---------------------------------------------------------------- diff
const diffSpec: Record<string, FlagSpec> = {
  base: { type: 'string', placeholder: 'file|folder', help: 'base checkpoint (kohya names, split inference)' },
  json: jsonFlag,
  help: helpFlag,
};

export async function cmdDiff(argv: string[], io: Io): Promise<number> {
  const p = parseArgs(argv, diffSpec);
  if (bool(p, 'help')) return io.out(helpText('Usage: lora-lens diff <adapterA> <adapterB> [--base <b>] [--json]', diffSpec)), 0;
  if (p.positional.length !== 2) throw inputError('Usage', 'diff takes exactly two adapters (see --help)');
  const base = str(p, 'base');
  const report = await diff({ a: { path: p.positional[0]! }, b: { path: p.positional[1]! }, ...(base ? { base } : {}), cancel: io.cancel });
  if (bool(p, 'json')) {
    io.out(JSON.stringify(report, null, 2));
    return 0;
  }
  const change = (a: number | null, b: number | null) => (a === b ? fmtNum(a) : `${fmtNum(a)}→${fmtNum(b)}`);
  io.out(renderTable(report.modules, [
    { title: 'module', get: (m) => m.module, max: 60 },
    { title: 'in', get: (m) => (m.status === 'both' ? 'A,B' : m.status === 'only-a' ? 'A' : 'B') },
    { title: 'r', get: (m) => change(m.rA, m.rB), align: 'right' },
    { title: 'α', get: (m) => change(m.alphaA, m.alphaB), align: 'right' },
    { title: '‖ΔW_A‖', get: (m) => fmtNum(m.normA), align: 'right' },
    { title: '‖ΔW_B‖', get: (m) => fmtNum(m.normB), align: 'right' },
    { title: 'cosine', get: (m) => fmtNum(m.cosine), align: 'right' },
    { title: 'subspace', get: (m) => fmtNum(m.subspaceSimilarity), align: 'right' },
  ]));
  const s = report.summary;
  io.out(`\n${s.both} modules in both, ${s.onlyA} only in A, ${s.onlyB} only in B · cosine mean ${fmtNum(s.meanCosine)}, min ${fmtNum(s.minCosine)} · rank changed in ${s.rankChanged}, α changed in ${s.alphaChanged}`);
  return 0;
}
