/**
 * `lora-lens unmerge`: W = W' − s·ΔW with the merge's own numerics (weight −1). Exact in F32 up to rounding, about
 * 1 ulp per element in F16/BF16 because W' was rounded. With the original base, the drift is measured per tensor.
 */
import type { Adapter, AdapterWarning } from '../adapter/types';
import type { Checkpoint, TensorInfo } from '../checkpoint';
import { selectBackend } from '../compute/select';
import { toF32 } from '../convert';
import { ulp } from './tolerance';
import type { Dtype } from '../dtype';
import { unsupportedError } from '../errors';
import { openCheckpoint } from '../formats/open';
import type { UnmergeOptions } from '../options';
import type { UnmergeReport } from '../reports';
import { checkOutputs, outputLayout } from './outputLayout';
import { planMerge } from './plan';
import { PROVENANCE_KEYS, provenanceMetadata, sha256File } from './provenance';
import { rewriteCheckpoint } from './rewrite';
import { closeAll, inputFiles, loadAdapters } from './sources';

export const DORA_UNMERGE_MESSAGE =
  "a DoRA merge keeps each row's direction but not its length; it cannot be undone from the merged weights alone — use the original base";

export type UnmergeResult = UnmergeReport & { warnings: AdapterWarning[] };

export type Drift = { baseKey: string; maxUlps: number; maxAbs: number };

/**
 * max |restored − original|, and the same in units in the last place of the storage dtype, measured at the
 * magnitude the merged value had: W' = W + ΔW was rounded at |W'|'s granularity, so that is the precision a
 * merge→unmerge round trip can keep (PEFT #1388). Counting representable steps at |W| instead would report
 * thousands of "ulps" for near-zero weights that a large ΔW passed through. NaN against a number is infinite.
 */
export function driftOf(
  restored: Uint8Array, restoredDtype: Dtype, original: Uint8Array, originalDtype: Dtype, merged?: Float32Array,
): { maxUlps: number; maxAbs: number } {
  const a = toF32(restored, restoredDtype);
  const b = toF32(original, originalDtype);
  let maxAbs = 0;
  let maxUlps = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (Number.isNaN(x) !== Number.isNaN(y)) {
        maxAbs = Infinity;
        maxUlps = Infinity;
      }
      continue;
    }
    const d = Math.abs(x - y);
    if (d === 0) continue;
    if (d > maxAbs) maxAbs = d;
    const scale = Math.max(Math.abs(y), Math.abs(x), merged ? Math.abs(merged[i] ?? 0) : 0);
    const u = d / ulp(scale, restoredDtype);
    if (u > maxUlps) maxUlps = u;
  }
  return { maxUlps: Math.round(maxUlps * 100) / 100, maxAbs };
}

function refuseDora(adapter: Adapter): void {
  const dora = adapter.layers.find((l) => l.magnitudeKey);
  if (dora) throw unsupportedError('DoraUnmerge', `${dora.module}: ${DORA_UNMERGE_MESSAGE}`, adapter.path);
}

/** Warns when the merged file's provenance names a different adapter than the one given. */
async function provenanceWarnings(merged: Checkpoint, adapter: Adapter): Promise<AdapterWarning[]> {
  const raw = merged.metadata?.[PROVENANCE_KEYS.adapters];
  if (!raw) return [];
  let listed: { sha256?: string; path?: string }[];
  try {
    listed = JSON.parse(raw) as { sha256?: string }[];
  } catch {
    return [];
  }
  const sha = await sha256File(adapter.weightsPath);
  if (listed.some((a) => a.sha256 === sha)) return [];
  return [{
    code: 'ProvenanceMismatch',
    message: `the merged file says it was made from ${listed.map((a) => a.path).join(', ')}, whose weights differ from ${adapter.path}; unmerging a different adapter does not restore the base`,
  }];
}

export async function unmerge(opts: UnmergeOptions): Promise<UnmergeResult> {
  const started = performance.now();
  const merged = await openCheckpoint(opts.merged);
  let adapters: Adapter[] = [];
  let original: Checkpoint | null = null;
  try {
    adapters = await loadAdapters([opts.adapter], merged);
    const adapter = adapters[0]!;
    refuseDora(adapter);
    const warnings: AdapterWarning[] = [];
    const plan = planMerge(merged, [{ adapter, weight: -1 }]);
    warnings.push(...plan.warnings.filter((w) => w.code !== 'ReplacementUnweighted'));
    // Full tensors replaced at merge time are gone from the merged file; they stay as they are.
    for (const [key, p] of plan.tensors) {
      if (!p.replacement) continue;
      warnings.push({
        code: 'ReplacedNotRestored',
        message: `${key} was replaced in full by ${p.replacement.tensor.key}; the original cannot be recovered from the merged file and is kept as merged`,
        module: key,
      });
      if (p.updates.length === 0 && p.biasAdds.length === 0 && !p.dora) plan.tensors.delete(key);
      else p.replacement = null;
    }
    warnings.push(...(await provenanceWarnings(merged, adapter)));

    const layout = outputLayout(merged, opts.out);
    if (opts.base) original = await openCheckpoint(opts.base);
    const inputs = [...inputFiles(merged, adapters), ...(original ? inputFiles(original, []) : [])];
    checkOutputs(layout, inputs, opts.overwrite ?? false);

    const sel = await selectBackend(opts.device ?? 'auto');
    const backend = sel.backend;
    const kept: Record<string, string> = {};
    const src: Readonly<Record<string, string>> = merged.metadata ?? { format: 'pt' };
    for (const [k, v] of Object.entries(src)) if (!k.startsWith('lora_lens.')) kept[k] = v;
    const metadata = { ...kept, ...(await provenanceMetadata([{ adapter, weight: -1 }], 'unmerge')) };

    const drift: Drift[] | null = original ? [] : null;
    const orig = original;
    const onChanged = orig
      ? async (info: TensorInfo, outDtype: Dtype, bytes: Uint8Array) => {
          const o = orig.get(info.name);
          if (!o) return;
          const d = driftOf(bytes, outDtype, await orig.readBytes(info.name), o.dtype, await merged.readF32(info.name));
          drift!.push({ baseKey: info.name, ...d });
        }
      : undefined;

    const res = await rewriteCheckpoint({
      base: merged, adapters, plan, backend, layout, floatDtype: null, metadata, inputs,
      overwrite: opts.overwrite ?? false,
      phase: 'unmerge',
      ...(onChanged ? { onChanged } : {}),
      cancel: opts.cancel,
      onProgress: opts.onProgress,
    });
    return {
      out: layout.out,
      outFiles: res.outFiles,
      device: backend.name,
      tensorsUnmerged: res.changed,
      drift,
      seconds: (performance.now() - started) / 1000,
      warnings,
    };
  } finally {
    await closeAll([merged, original, ...adapters.map((a) => a.checkpoint)]);
  }
}
