/**
 * Valid inputs the fuzzer mutates: the oracle fixtures (safetensors, torch zips), the vendored bloom adapter, and a
 * few synthetic variants that reach reader paths no fixture does (legacy torch stream, ZIP64, deflated data.pkl).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { f32Bytes, pickleOf, torchLegacy } from '../unit/torch/build';
import { buildZip, parseSeedZip, type ParsedZip } from './zipTools';

export type SeedKind = 'safetensors' | 'torch-zip' | 'torch-legacy' | 'safetensors-index';

export interface Seed {
  readonly name: string;
  readonly kind: SeedKind;
  readonly bytes: Uint8Array;
  /** File name the mutated copy is written under (openTorch names a bare tensor after it). */
  readonly fileName: string;
  /** Relative chance of being picked (large seeds are slower per case). */
  readonly weight: number;
  /** torch zips: the archive split into entries, and where its header fields are. */
  readonly zip?: ParsedZip;
  /** adapter_config.json (or lora_config.json) beside the fixture, for loadAdapter-style processing. */
  readonly config?: Record<string, unknown>;
  /** Files written once beside the mutated one (the shards of an index seed); never mutated. */
  readonly companions?: ReadonlyArray<readonly [name: string, bytes: Uint8Array]>;
}

export const repoRoot = resolve(__dirname, '../..');

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

function configBeside(file: string): Record<string, unknown> | undefined {
  for (const n of ['adapter_config.json', 'lora_config.json']) {
    const p = join(dirname(file), n);
    if (existsSync(p)) {
      try {
        return JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

function kindOf(bytes: Uint8Array): SeedKind {
  if (bytes[0] === 0x50 && bytes[1] === 0x4b) return 'torch-zip';
  if (bytes[0] === 0x80) return 'torch-legacy';
  return 'safetensors';
}

/** A legacy (pre-zip) torch.save stream with an F32 tensor, an F16 tensor and a view into a shared storage. */
function legacySeed(): Uint8Array {
  const f32 = { key: '94001', storageClass: 'FloatStorage', numel: 6 };
  const f16 = { key: '94002', storageClass: 'HalfStorage', numel: 4 };
  const main = pickleOf({
    $dict: [
      ['lora_A.weight', { $tensor: { storage: f32, shape: [2, 3] } }],
      ['lora_B.weight', { $tensor: { storage: f16, shape: [2, 2] } }],
      ['tail', { $tensor: { storage: { ...f32, view: { key: '94003', offset: 2, size: 4 } }, shape: [4] } }],
      ['epoch', 3],
    ],
  }, true);
  const half = new Uint8Array(Uint16Array.from([0x3c00, 0x4000, 0xbc00, 0x0001]).buffer);
  return torchLegacy(main, [
    { key: '94001', numel: 6, data: f32Bytes([1, 2, 3, 4, 5, 6]) },
    { key: '94002', numel: 4, data: half },
  ]);
}

let cached: Seed[] | undefined;

export function loadSeeds(): Seed[] {
  if (cached) return cached;
  const fixtures = join(repoRoot, 'test/fixtures');
  const files = walk(join(fixtures, 'oracle'))
    .filter((f) => f.endsWith('.safetensors') || f.endsWith('.pt') || basename(f) === 'adapter_model.bin')
    .concat(walk(join(fixtures, 'real')).filter((f) => f.endsWith('.bin') || f.endsWith('.safetensors')))
    .sort();
  const seen = new Set<string>();
  const seeds: Seed[] = [];
  for (const f of files) {
    const bytes = new Uint8Array(readFileSync(f));
    const hash = createHash('sha256').update(bytes).digest('hex');
    if (seen.has(hash)) continue;
    seen.add(hash);
    const kind = kindOf(bytes);
    const config = configBeside(f);
    seeds.push({
      name: f.slice(fixtures.length + 1),
      kind,
      bytes,
      fileName: basename(f),
      weight: bytes.length > 1 << 20 ? 0.15 : 1,
      ...(kind === 'torch-zip' ? { zip: parseSeedZip(bytes) } : {}),
      ...(config ? { config } : {}),
    });
  }
  if (seeds.length === 0) throw new Error(`no fuzz seeds under ${fixtures}`);

  // Variants of the smallest torch zip: the same archive through ZIP64 records, and with data.pkl deflated.
  const small = seeds.filter((s) => s.zip).sort((a, b) => a.bytes.length - b.bytes.length)[0];
  if (small?.zip) {
    const entries = small.zip.entries;
    const z64 = buildZip(entries, { zip64: true });
    seeds.push({ name: `${small.name}#zip64`, kind: 'torch-zip', bytes: z64, fileName: small.fileName, weight: 0.5, ...(small.config ? { config: small.config } : {}) });
    const deflated = buildZip(entries.map((e) => ({ ...e, method: e.name.endsWith('data.pkl') ? 8 : 0 })));
    seeds.push({ name: `${small.name}#deflated-pkl`, kind: 'torch-zip', bytes: deflated, fileName: small.fileName, weight: 0.5, ...(small.config ? { config: small.config } : {}) });
  }
  // A sharded set: the index is mutated, its two shards (small oracle bases) sit beside it unchanged.
  const shardSeeds = seeds.filter((s) => s.kind === 'safetensors' && s.name.endsWith('base.safetensors')).slice(0, 2);
  if (shardSeeds.length === 2) {
    const companions = shardSeeds.map((s, i) => [`model-0000${i + 1}-of-00002.safetensors`, s.bytes] as const);
    const weightMap: Record<string, string> = {};
    companions.forEach(([file, bytes]) => {
      const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
      const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')) as Record<string, unknown>;
      for (const k of Object.keys(header)) if (k !== '__metadata__') weightMap[k] ??= file;
    });
    const index = { metadata: { total_size: companions.reduce((a, [, b]) => a + b.length, 0) }, weight_map: weightMap };
    seeds.push({
      name: 'synthetic/model.safetensors.index.json', kind: 'safetensors-index', fileName: 'model.safetensors.index.json',
      bytes: new Uint8Array(Buffer.from(JSON.stringify(index, null, 2))), weight: 1.5, companions,
    });
  }
  seeds.push({ name: 'synthetic/legacy.bin', kind: 'torch-legacy', bytes: legacySeed(), fileName: 'legacy.bin', weight: 1.5 });
  cached = seeds;
  return seeds;
}
