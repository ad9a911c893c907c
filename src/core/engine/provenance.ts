/**
 * Provenance written into a merged checkpoint's `__metadata__`, so that a merged file says which adapters (by content
 * hash, not just name), with which weights and scalings, went into it — and `unmerge`/`parity` can check they were
 * given the same adapter.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import type { Adapter } from '../adapter/types';
import { ioError } from '../errors';
import { VERSION } from '../version';


export const PROVENANCE_KEYS = {
  version: 'lora_lens.version',
  adapters: 'lora_lens.adapters',
  scaling: 'lora_lens.scaling',
  mergedAt: 'lora_lens.merged_at',
  operation: 'lora_lens.operation',
} as const;

/** Scaling maps longer than this are stored as their hash (metadata lives in the header, which readers cap). */
export const MAX_SCALING_JSON = 64 * 1024;

export interface ProvenanceAdapter {
  path: string;
  sha256: string;
  weight: number;
  configSha256: string | null;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) h.update(chunk as Buffer);
  } catch (e) {
    throw ioError('ReadFailed', `cannot read for hashing: ${(e as Error).message}`, path);
  }
  return h.digest('hex');
}

export async function describeAdapter(adapter: Adapter, weight: number): Promise<ProvenanceAdapter> {
  return {
    path: basename(adapter.path),
    sha256: await sha256File(adapter.weightsPath),
    weight,
    configSha256: adapter.configPath ? await sha256File(adapter.configPath) : null,
  };
}

/** module → scaling of one adapter (or "sha256:<hex>" of that JSON when it would bloat the header). */
export function scalingMap(adapters: readonly Adapter[]): string {
  const maps = adapters.map((a) => Object.fromEntries(a.layers.map((l) => [l.module, l.scaling])));
  const json = JSON.stringify(maps.length === 1 ? maps[0] : maps);
  return json.length <= MAX_SCALING_JSON ? json : `sha256:${createHash('sha256').update(json).digest('hex')}`;
}

export async function provenanceMetadata(
  adapters: readonly { adapter: Adapter; weight: number }[],
  operation: 'merge' | 'unmerge',
  now: Date = new Date(),
): Promise<Record<string, string>> {
  const described: ProvenanceAdapter[] = [];
  for (const { adapter, weight } of adapters) described.push(await describeAdapter(adapter, weight));
  return {
    [PROVENANCE_KEYS.version]: VERSION,
    [PROVENANCE_KEYS.operation]: operation,
    [PROVENANCE_KEYS.adapters]: JSON.stringify(described),
    [PROVENANCE_KEYS.scaling]: scalingMap(adapters.map((a) => a.adapter)),
    [PROVENANCE_KEYS.mergedAt]: now.toISOString(),
  };
}
