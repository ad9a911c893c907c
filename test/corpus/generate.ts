/**
 * Hand-made regression inputs. Small ones are also committed as files (so the corpus stays readable without running
 * code); large ones (50 MB of header whitespace, zip bombs) exist only here and are built when the test runs.
 *
 *   node --import tsx test/corpus/generate.ts --write    # (re)writes the committed files of the corpus
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { OP, Pickle, f32Bytes, pickleOf, torchLegacy, torchZip, type StorageSpec } from '../unit/torch/build';
import { buildZip } from '../fuzz/zipTools';

const enc = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

/** `[u64 LE len][header][data]`; `len` defaults to the header's byte length. */
function st(header: string | Uint8Array, data: Uint8Array = new Uint8Array(0), len?: bigint): Uint8Array {
  const h = typeof header === 'string' ? enc(header) : header;
  const head = new Uint8Array(8);
  new DataView(head.buffer).setBigUint64(0, len ?? BigInt(h.length), true);
  return cat(head, h, data);
}

/** A well-formed one-tensor torch archive, for variants. */
function smallTorch(): Uint8Array {
  const storage: StorageSpec = { key: '0', storageClass: 'FloatStorage', numel: 2 };
  return torchZip({ pickle: pickleOf({ $dict: [['w', { $tensor: { storage, shape: [2] } }]] }), storages: { '0': f32Bytes([1, 2]) } });
}

/** data.pkl = {"w": <payload>}. */
function zipWith(payload: (p: Pickle) => Pickle): Uint8Array {
  const p = new Pickle().proto(2).global('collections', 'OrderedDict').emptyTuple().reduce().mark().str('w');
  return torchZip({ pickle: payload(p).setitems().stop().bytes(), storages: { '0': f32Bytes([1, 2]) } });
}

export const generators: Record<string, () => Uint8Array> = {
  /** A valid safetensors file whose last (U8) tensor holds a complete torch zip, end record at end of file. */
  'polyglot-safetensors-zip.safetensors': () => {
    const zip = smallTorch();
    const h = (pad: number) => `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"z":{"dtype":"U8","shape":[${zip.length}],"data_offsets":[8,${8 + zip.length}]}}${' '.repeat(pad)}`;
    const header = h((8 - (h(0).length % 8)) % 8);
    // Zip offsets count from the start of the file, so shift the archive's own offsets by what precedes it.
    const shift = 8 + header.length + 8;
    const z = zip.slice();
    const v = new DataView(z.buffer);
    const eocd = z.length - 22;
    const cdOffset = v.getUint32(eocd + 16, true);
    v.setUint32(eocd + 16, cdOffset + shift, true);
    for (let p = cdOffset, i = 0; i < v.getUint16(eocd + 10, true); i++) {
      v.setUint32(p + 42, v.getUint32(p + 42, true) + shift, true);
      p += 46 + v.getUint16(p + 28, true) + v.getUint16(p + 30, true) + v.getUint16(p + 32, true);
    }
    return st(header, cat(f32Bytes([1, 2]), z));
  },

  /** Header length 640 = bytes `80 02`, the start of a protocol-2 pickle: must still open as safetensors. */
  'pickle-magic-length.safetensors': () => {
    const body = '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    return st(body + ' '.repeat(640 - body.length), f32Bytes([3]));
  },

  /** 50 MB of whitespace after the header object: valid (the limit is 100 MB) and must parse in linear time. */
  'whitespace-50mb.safetensors': () => {
    const body = enc('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}');
    const header = new Uint8Array(body.length + 50_000_000).fill(0x20);
    header.set(body, 0);
    return st(header, f32Bytes([3]));
  },

  /** A self-consistent claim of 10^15 F32 elements in a 100-byte file: refused by the file-size check, no allocation. */
  'consistent-1e15-elements.safetensors': () =>
    st('{"w":{"dtype":"F32","shape":[1000000000000000],"data_offsets":[0,4000000000000000]}}', f32Bytes([1])),

  /** Element count beyond 64 bits. */
  'shape-product-overflow.safetensors': () =>
    st('{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}}', f32Bytes([1])),

  /** JSON nested 100 000 deep (beyond the 128 recursion limit). */
  'json-nesting-100k.safetensors': () => st(`{"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`),

  /** 0xFF inside a tensor name. */
  'non-utf8-key.safetensors': () =>
    st(cat(enc('{"w'), Uint8Array.of(0xff), enc('":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}')), f32Bytes([1])),

  /** Prototype-named tensors and metadata keys are plain names. */
  'prototype-names.safetensors': () =>
    st('{"__metadata__":{"__proto__":"x","constructor":"y"},"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"constructor":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32Bytes([1, 2])),

  'empty-file.safetensors': () => new Uint8Array(0),

  /** Stride-0 view of a one-element storage claiming 2^28 elements: 1 GiB from a 1 KB file (was allocated). */
  'broadcast-view.bin': () => {
    const storage: StorageSpec = { key: '0', storageClass: 'FloatStorage', numel: 1 };
    return torchZip({ pickle: pickleOf({ $dict: [['w', { $tensor: { storage, shape: [1 << 28], stride: [0] } }]] }), storages: { '0': f32Bytes([1]) } });
  },

  /** data.pkl deflated: 64 MiB of zeros in ~64 KB (was inflated whole before any check). */
  'deflate-bomb-pkl.bin': () => {
    const bomb = new Uint8Array(64 << 20);
    bomb.set([0x80, 2, OP.NONE, OP.STOP]);
    return torchZip({ pickle: bomb, deflatePickle: true });
  },

  /** 1000 small views into one deflated 4 MiB storage (was inflated again for every tensor read: quadratic). */
  'deflated-shared-storage.bin': () => {
    const numel = 1 << 20;
    const data = new Uint8Array(numel * 4);
    let x = 12345;
    for (let i = 0; i < data.length; i++) data[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
    const storage: StorageSpec = { key: '0', storageClass: 'FloatStorage', numel };
    const dict = Array.from({ length: 1000 }, (_, i): [string, { $tensor: { storage: StorageSpec; offset: number; shape: number[] } }] =>
      [`t${i}`, { $tensor: { storage, offset: i * 1000, shape: [16] } }]);
    const pkl = pickleOf({ $dict: dict });
    return buildZip([
      { name: 'archive/data.pkl', data: pkl },
      { name: 'archive/byteorder', data: enc('little') },
      { name: 'archive/data/0', data, method: 8 },
    ]);
  },

  /** _rebuild_from_type_v2 nested 10 000 deep through the memo (was a JS stack overflow, a RangeError). */
  'rebuild-from-type-nested.bin': () =>
    zipWith((p) => {
      p.global('torch._tensor', '_rebuild_from_type_v2').put(1);
      p.mark().global('collections', 'OrderedDict').none().emptyTuple().none().tuple().put(2);
      for (let k = 1; k <= 10_000; k++) p.mark().get(1).none().get(k + 1).none().tuple().put(k + 2);
      return p.get(1).get(10_002).reduce();
    }),

  /** A zip comment that ends with a fake end-of-central-directory record (claiming an empty archive). */
  'zip-comment-fake-eocd.bin': () => {
    const z = smallTorch();
    const fake = new Uint8Array(22);
    new DataView(fake.buffer).setUint32(0, 0x06054b50, true);
    const comment = cat(enc('comment:'), fake);
    const out = cat(z, comment);
    new DataView(out.buffer).setUint16(z.length - 2, comment.length, true);
    return out;
  },

  /** ZIP64 locator pointing past the file. */
  'zip64-locator-out-of-range.bin': () => {
    const z = smallTorch();
    const loc = new Uint8Array(20);
    const v = new DataView(loc.buffer);
    v.setUint32(0, 0x07064b50, true);
    v.setBigUint64(8, 1n << 40n, true);
    v.setUint32(16, 1, true);
    return cat(z.subarray(0, z.length - 22), loc, z.subarray(z.length - 22));
  },

  /** A persistent id whose storage key walks out of data/. */
  'storage-key-traversal.bin': () => {
    const storage: StorageSpec = { key: '../../../etc/passwd', storageClass: 'FloatStorage', numel: 1 };
    return torchZip({ pickle: pickleOf({ $dict: [['w', { $tensor: { storage, shape: [1] } }]] }), storages: { '0': f32Bytes([1]) } });
  },

  /** A legacy stream whose storage record claims 2^63 - 1 elements. */
  'legacy-huge-count.bin': () => {
    const storage: StorageSpec = { key: '1', storageClass: 'FloatStorage', numel: 1 };
    const main = pickleOf({ $dict: [['w', { $tensor: { storage, shape: [1] } }]] }, true);
    const file = torchLegacy(main, [{ key: '1', numel: 1, data: f32Bytes([1]) }]);
    new DataView(file.buffer).setBigInt64(file.length - 12, (1n << 63n) - 1n, true);
    return file;
  },

  /** A legacy view reaching past its root storage. */
  'legacy-view-outside.bin': () => {
    const storage: StorageSpec = { key: '1', storageClass: 'FloatStorage', numel: 2, view: { key: '2', offset: 1, size: 5 } };
    const main = pickleOf({ $dict: [['w', { $tensor: { storage, shape: [5] } }]] }, true);
    return torchLegacy(main, [{ key: '1', numel: 2, data: f32Bytes([1, 2]) }]);
  },

  /** os.system through STACK_GLOBAL in a legacy stream's main pickle (after a valid magic/protocol/sys_info). */
  'legacy-stack-global-exploit.bin': () => {
    const main = new Pickle().proto(4).str('os').str('system').op(OP.STACK_GLOBAL).str('touch /tmp/lora-lens-pwned')
      .op(OP.TUPLE1).reduce().stop().bytes();
    return torchLegacy(main, []);
  },

  /** A sharded index naming its shard with a trailing NUL (Node's fs used to refuse it with a raw message). */
  'nul-in-shard-name.safetensors.index.json': () => enc('{"weight_map":{"w":"model-00001-of-00001.safetensors\\u0000"}}'),

  /** A stored entry whose recorded CRC is wrong (data.pkl). */
  'bad-crc-pkl.bin': () => {
    const pkl = pickleOf({ $dict: [] });
    return buildZip([{ name: 'archive/data.pkl', data: pkl, crc: (crc32(pkl) ^ 1) >>> 0 }]);
  },

  /** A deflated data.pkl whose stream is corrupt (its first bytes overwritten). */
  'garbage-deflate-pkl.bin': () => {
    const z = buildZip([{ name: 'archive/data.pkl', data: pickleOf({ $dict: [] }), method: 8 }]);
    z.fill(0xff, 64, 68); // buildZip pads the first local header so its data starts at byte 64
    return z;
  },
};

if (process.argv.includes('--write')) {
  for (const [name, make] of Object.entries(generators)) {
    const bytes = make();
    if (bytes.length > 256 << 10) continue; // large ones are built by the test
    writeFileSync(join(__dirname, name), bytes);
    process.stdout.write(`${name} (${bytes.length} bytes)\n`);
  }
}
