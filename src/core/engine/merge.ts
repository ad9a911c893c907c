/**
 * `lora-lens merge`: W' = W + Σ wᵢ·sᵢ·ΔWᵢ for every adapted base tensor (DoRA: renormalised rows), full tensors from
 * the adapters replacing theirs, everything else copied byte for byte — streamed into a new checkpoint of the
 * same layout that appears atomically, with provenance in its metadata.
 */
import type { Adapter } from '../adapter/types';
import { selectBackend } from '../compute/select';
import { inputError } from '../errors';
import { openCheckpoint } from '../formats/open';
import type { MergeOptions, OutputDtype } from '../options';
import type { MergeReport } from '../reports';
import { checkOutputs, outputLayout } from './outputLayout';
import { planMerge, type MergePlan } from './plan';
import { provenanceMetadata } from './provenance';
import { rewriteCheckpoint } from './rewrite';
import { closeAll, inputFiles, loadAdapters } from './sources';

export function floatDtypeOf(d: OutputDtype | undefined): 'F32' | 'F16' | 'BF16' | null {
  switch (d ?? 'keep') {
    case 'keep': return null;
    case 'f16': return 'F16';
    case 'bf16': return 'BF16';
    case 'f32': return 'F32';
    default: throw inputError('BadDtype', `output dtype must be keep, f16, bf16 or f32 — got '${String(d)}'`);
  }
}

export function mergedModules(plan: MergePlan, adapters: readonly Adapter[]): MergeReport['modules'] {
  const modules: MergeReport['modules'] = [];
  for (const p of plan.tensors.values()) {
    const ups = [...p.updates, ...(p.dora ? [p.dora] : []), ...p.biasAdds];
    if (ups.length === 0) continue;
    modules.push({
      baseKey: p.baseKey,
      adapters: ups.map((u) => ({ path: adapters[u.adapterIndex]!.path, weight: u.weight, scaling: u.scaling })),
    });
  }
  return modules;
}

export async function merge(opts: MergeOptions): Promise<MergeReport> {
  const started = performance.now();
  if (opts.adapters.length === 0) throw inputError('NoAdapters', 'give at least one adapter to merge');
  const floatDtype = floatDtypeOf(opts.dtype);
  const base = await openCheckpoint(opts.base);
  let adapters: Adapter[] = [];
  try {
    adapters = await loadAdapters(opts.adapters, base);
    const weighted = adapters.map((adapter, i) => ({ adapter, weight: opts.adapters[i]!.weight ?? 1 }));
    const plan = planMerge(base, weighted);
    const layout = outputLayout(base, opts.out);
    const inputs = inputFiles(base, adapters);
    checkOutputs(layout, inputs, opts.overwrite ?? false);

    const sel = await selectBackend(opts.device ?? 'auto');
    const backend = sel.backend;
    const metadata: Record<string, string> = {
      ...(base.metadata ?? { format: 'pt' }),
      ...(await provenanceMetadata(weighted, 'merge')),
    };
    const res = await rewriteCheckpoint({
      base, adapters, plan, backend, layout, floatDtype, metadata, inputs,
      overwrite: opts.overwrite ?? false,
      phase: 'merge',
      cancel: opts.cancel,
      onProgress: opts.onProgress,
    });
    return {
      out: layout.out,
      outFiles: res.outFiles,
      device: backend.name,
      deviceReport: sel.report,
      tensorsMerged: res.changed,
      tensorsReplaced: res.replaced,
      tensorsCopied: res.copied,
      bytesWritten: res.bytesWritten,
      seconds: (performance.now() - started) / 1000,
      modules: mergedModules(plan, adapters),
      warnings: plan.warnings,
    };
  } finally {
    await closeAll([base, ...adapters.map((a) => a.checkpoint)]);
  }
}
