import { promises as fsp } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type { Checkpoint } from '../../checkpoint';
import { formatError, inputError, isLoraLensError, securityError } from '../../errors';
import { fsError } from '../../io/fsError';
import { JsonError, JsonNumber, JsonObject, parseJson, type JsonValue } from './json';
import { decodeForMath, openSafetensors, type SafetensorsCheckpoint, type SafetensorsTensorInfo } from './reader';

/** Index files of the largest public models are a few MB; this bounds what we read before parsing. */
export const MAX_INDEX_BYTES = 100_000_000;

export interface ShardedTensorInfo extends SafetensorsTensorInfo {
  /** The shard file that holds it. */
  readonly file: string;
}

function plain(v: JsonValue): unknown {
  if (v instanceof JsonNumber) return Number(v.raw);
  if (v instanceof JsonObject) return Object.fromEntries(v.keys.map((k, i) => [k, plain(v.values[i]!)]));
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

/**
 * A sharded set behind `model.safetensors.index.json` as one checkpoint. The index's weight_map is
 * the authority: every entry must exist in the shard it names; tensors that a shard holds but the
 * index does not list are left out (and reported in `unlisted`).
 */
export class ShardedSafetensorsCheckpoint implements Checkpoint {
  readonly format = 'safetensors-sharded' as const;
  readonly files: readonly string[];
  readonly tensors: readonly ShardedTensorInfo[];
  /** The first shard's `__metadata__` (shards written by one save carry the same one). */
  readonly metadata: Readonly<Record<string, string>> | null;
  readonly metadataEntries: ReadonlyArray<readonly [string, string]> | null;
  /** The index's own `metadata` object (e.g. total_size), numbers as JS numbers. */
  readonly indexMetadata: Readonly<Record<string, unknown>> | null;
  /** Tensors present in a shard but absent from weight_map, as "file: name". */
  readonly unlisted: readonly string[];
  private readonly byName: Map<string, { info: ShardedTensorInfo; shard: SafetensorsCheckpoint }>;

  constructor(
    readonly path: string,
    readonly shards: readonly SafetensorsCheckpoint[],
    weightMap: ReadonlyMap<string, string>,
    indexMetadata: Record<string, unknown> | null,
  ) {
    this.files = shards.map((s) => s.path);
    this.metadata = shards[0]?.metadata ?? null;
    this.metadataEntries = shards[0]?.metadataEntries ?? null;
    this.indexMetadata = indexMetadata;
    const tensors: ShardedTensorInfo[] = [];
    const unlisted: string[] = [];
    this.byName = new Map();
    for (const shard of shards) {
      for (const t of shard.tensors) {
        if (weightMap.get(t.name) !== shard.path) {
          unlisted.push(`${shard.path}: ${t.name}`);
          continue;
        }
        const info = { ...t, file: shard.path };
        tensors.push(info);
        this.byName.set(t.name, { info, shard });
      }
    }
    this.tensors = tensors;
    this.unlisted = unlisted;
  }

  private entry(name: string) {
    const e = this.byName.get(name);
    if (!e) throw inputError('UnknownTensor', `there is no tensor named "${name}"`, this.path);
    return e;
  }

  get(name: string): ShardedTensorInfo | undefined {
    return this.byName.get(name)?.info;
  }

  fileOf(name: string): string {
    return this.entry(name).shard.path;
  }

  /** The shard checkpoint holding a tensor (for dataOffset/readInto on that file). */
  shardOf(name: string): SafetensorsCheckpoint {
    return this.entry(name).shard;
  }

  dataOffset(name: string): number {
    return this.entry(name).info.offset;
  }

  async readBytes(name: string): Promise<Uint8Array> {
    return this.entry(name).shard.readBytes(name);
  }

  async readInto(name: string, target: Uint8Array): Promise<void> {
    return this.entry(name).shard.readInto(name, target);
  }

  async readF32(name: string): Promise<Float32Array> {
    const { info, shard } = this.entry(name);
    return decodeForMath(await shard.readBytes(name), info.dtype, name, shard.path);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.close()));
  }
}

async function readIndex(indexPath: string): Promise<JsonObject> {
  let text: string;
  try {
    const st = await fsp.stat(indexPath);
    if (st.size > MAX_INDEX_BYTES) throw formatError('IndexTooLarge', `the index is ${st.size} bytes, over the ${MAX_INDEX_BYTES}-byte limit`, indexPath);
    const bytes = await fsp.readFile(indexPath);
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    if (e instanceof TypeError) throw formatError('InvalidIndex', 'the index is not valid UTF-8', indexPath);
    throw fsError(e, indexPath);
  }
  let root: JsonValue;
  try {
    root = parseJson(text);
  } catch (e) {
    if (e instanceof JsonError && e.duplicateKey !== undefined) {
      throw formatError('DuplicateKey', `the index repeats the key ${JSON.stringify(e.duplicateKey)}`, indexPath);
    }
    throw formatError('InvalidIndex', `the index is not valid JSON: ${(e as Error).message}`, indexPath);
  }
  if (!(root instanceof JsonObject)) throw formatError('InvalidIndex', 'the index must be a JSON object', indexPath);
  return root;
}

/** Opens a sharded set from its index file, validating shards and the weight map. */
export async function openShardedSafetensors(indexPath: string): Promise<ShardedSafetensorsCheckpoint> {
  const root = await readIndex(indexPath);
  const wm = root.get('weight_map');
  if (!(wm instanceof JsonObject)) throw formatError('InvalidIndex', 'the index has no "weight_map" object', indexPath);
  const meta = root.get('metadata');
  if (meta !== undefined && meta !== null && !(meta instanceof JsonObject)) {
    throw formatError('InvalidIndex', 'the index "metadata" must be an object', indexPath);
  }

  const folder = dirname(resolve(indexPath));
  const weightMap = new Map<string, string>();
  const shardFiles = new Map<string, string>(); // as written in the index -> absolute path
  for (let i = 0; i < wm.keys.length; i++) {
    const file = wm.values[i];
    const name = wm.keys[i]!;
    if (typeof file !== 'string' || file === '') {
      throw formatError('InvalidIndex', `weight_map entry "${name}" must name a shard file`, indexPath);
    }
    if (file.includes('\0')) {
      // No file name holds a NUL; left in, Node's fs refuses the path with a raw argument error.
      throw formatError('InvalidIndex', `weight_map entry "${name}" names a shard with a NUL character`, indexPath);
    }
    let abs = shardFiles.get(file);
    if (abs === undefined) {
      abs = resolve(folder, file);
      const rel = relative(folder, abs);
      if (isAbsolute(file) || rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
        throw securityError('ShardOutsideFolder', `weight_map names "${file}", which is outside the index's folder`, indexPath);
      }
      shardFiles.set(file, abs);
    }
    weightMap.set(name, abs);
  }

  // Byte-wise file order puts model-00001-of-000NN before model-00002-of-000NN.
  const ordered = [...new Set(shardFiles.values())].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const opened = await Promise.allSettled(ordered.map((p) => openSafetensors(p)));
  const shards = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = opened.findIndex((r) => r.status === 'rejected');
  if (failed >= 0) {
    await Promise.all(shards.map((s) => s.close()));
    const reason = (opened[failed] as PromiseRejectedResult).reason;
    if (isLoraLensError(reason) && reason.code === 'NotFound') {
      throw formatError('MissingShard', `the index names shard "${relative(folder, ordered[failed]!)}", which does not exist`, indexPath);
    }
    throw reason;
  }

  const byPath = new Map(shards.map((s) => [s.path, s]));
  for (const [name, file] of weightMap) {
    if (!byPath.get(file)!.get(name)) {
      await Promise.all(shards.map((s) => s.close()));
      throw formatError('ShardTensorMissing', `weight_map puts "${name}" in ${relative(folder, file)}, which does not hold it`, indexPath);
    }
  }
  const indexMetadata = meta instanceof JsonObject ? (plain(meta) as Record<string, unknown>) : null;
  return new ShardedSafetensorsCheckpoint(indexPath, shards, weightMap, indexMetadata);
}
