/**
 * Opening what a merge/unmerge reads: the base checkpoint, the adapters (kohya names mapped through the base), and the
 * list of input files that must never be written and must not change underneath us.
 */
import { loadAdapter } from '../adapter/load';
import type { Adapter, AdapterOverrides } from '../adapter/types';
import type { Checkpoint } from '../checkpoint';
import { isLoraLensError } from '../errors';
import type { AdapterSpec } from '../options';

export function overridesOf(spec: AdapterSpec, base: Checkpoint): AdapterOverrides {
  const o: AdapterOverrides = { base };
  if (spec.config !== undefined) o.configPath = spec.config;
  if (spec.alpha !== undefined) o.alpha = spec.alpha;
  if (spec.enableLora !== undefined) o.enableLora = spec.enableLora;
  if (spec.fanInFanOut !== undefined) o.fanInFanOut = spec.fanInFanOut;
  return o;
}

export async function loadAdapters(specs: readonly AdapterSpec[], base: Checkpoint): Promise<Adapter[]> {
  const out: Adapter[] = [];
  try {
    for (const s of specs) {
      try {
        out.push(await loadAdapter(s.path, overridesOf(s, base)));
      } catch (e) {
        throw isLoraLensError(e) ? e.withFile(s.path) : e;
      }
    }
    return out;
  } catch (e) {
    await closeAll(out.map((a) => a.checkpoint));
    throw e;
  }
}

export function inputFiles(base: Checkpoint, adapters: readonly Adapter[]): string[] {
  const files = new Set<string>(base.files);
  if (base.path.endsWith('.json')) files.add(base.path);
  for (const a of adapters) {
    files.add(a.weightsPath);
    if (a.configPath) files.add(a.configPath);
  }
  return [...files];
}

export async function closeAll(cks: readonly (Checkpoint | null | undefined)[]): Promise<void> {
  await Promise.all(cks.map((c) => c?.close().catch(() => undefined)));
}
