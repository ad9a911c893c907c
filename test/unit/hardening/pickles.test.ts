/**
 * Malicious pickles, beyond test/unit/torch/malicious.test.ts: more code-execution globals and look-alike names,
 * torch.load tricks, exploits in every pickle of a legacy stream and after STOP, deep REDUCE/rebuild chains, memo
 * type confusion and huge length prefixes — all through the public openCheckpoint, with process-spawning APIs
 * spied on and a marker file that any executed payload would create.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint } from '../../../src/core/formats/open';
import { isLoraLensError } from '../../../src/core/errors';
import { TorchCheckpoint } from '../../../src/core/formats/torch/index';
import { OP, Pickle, f32Bytes, pickleOf, torchLegacy, torchZip } from '../torch/build';

const dir = mkdtempSync(join(tmpdir(), 'lora-lens-pickles-'));
const marker = join(dir, 'PWNED');
const shell = `touch ${marker}`;

// Anything that would start a process or load native code; none of it may be reached.
const spied: string[] = [];
const req = createRequire(__filename);
const cp = req('node:child_process') as Record<string, unknown>;
const originals = new Map<string, unknown>();
for (const fn of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
  originals.set(fn, cp[fn]);
  cp[fn] = (...args: unknown[]) => {
    spied.push(`child_process.${fn}(${String(args[0])})`);
    throw new Error('spawning is forbidden in this test');
  };
}
const dlopen = process.dlopen;
process.dlopen = ((...args: unknown[]) => {
  spied.push(`process.dlopen(${String(args[1])})`);
  throw new Error('dlopen is forbidden in this test');
}) as typeof process.dlopen;

test.after(() => {
  for (const [fn, f] of originals) cp[fn] = f;
  process.dlopen = dlopen;
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function file(bytes: Uint8Array, ext = '.pt'): string {
  const p = join(dir, `case-${n++}${ext}`);
  writeFileSync(p, bytes);
  return p;
}

/** data.pkl = {"w": <payload>} in an otherwise well-formed archive. */
function zipWith(payload: (p: Pickle) => Pickle, protocol = 2): Uint8Array {
  const p = new Pickle().proto(protocol).global('collections', 'OrderedDict').emptyTuple().reduce().mark().str('w');
  return torchZip({ pickle: payload(p).setitems().stop().bytes(), storages: { '0': f32Bytes([1]) } });
}

const call = (module: string, name: string) => (p: Pickle) => p.global(module, name).str(shell).op(OP.TUPLE1).reduce();

/** Opens through the public entry point and checks it came back as a torch checkpoint (for `extras`). */
async function openTorchFile(path: string): Promise<TorchCheckpoint> {
  const ck = await openCheckpoint(path);
  assert.ok(ck instanceof TorchCheckpoint, `${path} opened as ${ck.format}`);
  return ck;
}

async function expectError(path: string, kind: string, code: string, mentions: string[] = []): Promise<void> {
  await assert.rejects(openCheckpoint(path), (e: unknown) => {
    assert.ok(isLoraLensError(e), `expected a LoraLensError, got ${String(e)}`);
    assert.equal(`${e.kind}/${e.code}`, `${kind}/${code}`, e.message);
    assert.equal(e.file, path);
    for (const m of mentions) assert.ok(e.message.includes(m), `"${e.message}" should mention ${JSON.stringify(m)}`);
    return true;
  });
  assert.equal(existsSync(marker), false, 'a payload ran');
  assert.deepEqual(spied, []);
}

// Code execution and torch.load-style re-entry that the torch corpus does not name, plus look-alikes of allowed
// names: lookup is by exact qualified name, so none of these may resolve.
const refused: Array<[string, string]> = [
  ['torch.serialization', 'load'], ['torch.hub', 'load'], ['torch.jit', 'load'], ['torch._C', '_load_for_lite_interpreter'],
  ['torch.package', 'PackageImporter'], ['pickle', 'loads'], ['_pickle', 'loads'], ['marshal', 'loads'],
  ['builtins', 'compile'], ['builtins', 'open'], ['builtins', 'breakpoint'], ['io', 'open'], ['ctypes', 'CDLL'],
  ['importlib', 'import_module'], ['types', 'FunctionType'], ['shutil', 'rmtree'], ['pty', 'spawn'], ['os', 'execv'],
  ['webbrowser', 'open'], ['code', 'interact'],
  ['collections', 'OrderedDict.__class__'], ['torch._utils', '_rebuild_tensor_v2.__globals__'], ['collections ', 'OrderedDict'],
  ['collections', 'OrderedDict\u0000'], ['c\u043ellections', 'OrderedDict'], ['torch', 'FloatStorage.__init__'],
  ['torch.nn.parameter', 'Parameter.__reduce_ex__'], ['__builtin__', 'getattr'], ['copy_reg', '_reconstructor'],
];

for (const [module, name] of refused) {
  test(`refused global ${JSON.stringify(`${module}.${name}`)} (zip and legacy)`, async () => {
    await expectError(file(zipWith(call(module, name))), 'security', 'UnsafeGlobal', ['refused to load global']);
    const main = call(module, name)(new Pickle().proto(2)).stop().bytes();
    await expectError(file(torchLegacy(main, []), '.bin'), 'security', 'UnsafeGlobal', ['refused to load global']);
  });
}

test('an exploit in each pickle of a legacy stream is refused (magic, protocol, sys_info, main, key list)', async () => {
  const exploit = call('os', 'system')(new Pickle().proto(2)).stop().bytes();
  const good = torchLegacy(pickleOf({ $dict: [] }, true), []);
  // Splice the exploit in place of pickle k by rebuilding the stream's five pickles.
  const magic = new Pickle().proto(2).long(0x1950a86a20f9469cfc6cn).stop().bytes();
  const protocol = new Pickle().proto(2).int(1001).stop().bytes();
  const sysInfo = pickleOf({ $dict: [['protocol_version', 1001]], ordered: false });
  const main = pickleOf({ $dict: [] }, true);
  const keys = pickleOf([]);
  const parts = [magic, protocol, sysInfo, main, keys];
  assert.deepEqual(Buffer.concat(parts).subarray(0, magic.length), Buffer.from(good.subarray(0, magic.length)));
  for (let k = 0; k < parts.length; k++) {
    const stream = Buffer.concat(parts.map((p, i) => (i === k ? exploit : p)));
    await expectError(file(new Uint8Array(stream), '.bin'), 'security', 'UnsafeGlobal', ["'os.system'"]);
  }
});

test('bytes after STOP are never interpreted', async () => {
  const pkl = Buffer.concat([
    pickleOf({ $dict: [['w', { $tensor: { storage: { key: '0', storageClass: 'FloatStorage', numel: 1 }, shape: [1] } }]] }),
    call('os', 'system')(new Pickle()).stop().bytes(),
  ]);
  const path = file(torchZip({ pickle: new Uint8Array(pkl), storages: { '0': f32Bytes([7]) } }));
  const ck = await openCheckpoint(path);
  assert.deepEqual(ck.tensors.map((t) => t.name), ['w']);
  assert.deepEqual([...(await ck.readF32('w'))], [7]);
  await ck.close();
  assert.equal(existsSync(marker), false);
  assert.deepEqual(spied, []);
});

test('a persistent id whose storage type is a code-execution global is refused', async () => {
  const payload = (p: Pickle) =>
    p.mark().str('storage').global('os', 'system').str('0').str('cpu').int(1).tuple().op(OP.BINPERSID);
  await expectError(file(zipWith(payload)), 'security', 'UnsafeGlobal', ["'os.system'"]);
});

test('_rebuild_from_type_v2 cannot smuggle a refused callable however deep it is nested', async () => {
  // rebuild(rebuild, None, (rebuild, None, (exec, …)…)) — the inner exec is a GLOBAL, refused when pushed.
  const payload = (p: Pickle) => {
    p.global('torch._tensor', '_rebuild_from_type_v2').put(1);
    p.mark().global('builtins', 'exec').none().str(shell).op(OP.TUPLE1).none().tuple();
    return p.reduce();
  };
  await expectError(file(zipWith(payload)), 'security', 'UnsafeGlobal', ["'builtins.exec'"]);
});

test('_rebuild_from_type_v2 nested 20 000 deep is malformed, not a JS stack overflow', async () => {
  const payload = (p: Pickle) => {
    p.global('torch._tensor', '_rebuild_from_type_v2').put(1);
    p.mark().global('collections', 'OrderedDict').none().emptyTuple().none().tuple().put(2);
    for (let k = 1; k <= 20_000; k++) p.mark().get(1).none().get(k + 1).none().tuple().put(k + 2);
    return p.get(1).get(20_002).reduce();
  };
  await expectError(file(zipWith(payload)), 'format', 'PickleInvalid', ['nests more than']);
});

test('a REDUCE chain 20 000 deep through an allow-listed callable stays data', async () => {
  // OrderedDict(OrderedDict(…(OrderedDict([('k', 5)]))…)): 20 000 callables pushed, then TUPLE1 + REDUCE unwound.
  const chain = (p: Pickle) => {
    p.global('collections', 'OrderedDict').put(1);
    for (let k = 0; k < 20_000; k++) p.get(1);
    p.emptyList().mark().mark().str('k').int(5).tuple().op(OP.APPENDS).op(OP.TUPLE1).reduce();
    for (let k = 0; k < 20_000; k++) p.op(OP.TUPLE1).reduce();
    return p;
  };
  const ck = await openTorchFile(file(zipWith(chain)));
  const extras = ck.extras.map((e) => [e.name, e.preview]);
  await ck.close();
  assert.deepEqual(extras, [['w.k', '5']]);
  assert.deepEqual(spied, []);
});

test('memo abuse: a slot overwritten with another type, a list that contains itself, MEMOIZE spam', async () => {
  // The storage tuple is memoized, then slot 0 is overwritten with a str before it is fetched as the persistent id.
  const confused = (p: Pickle) =>
    p.global('torch._utils', '_rebuild_tensor_v2').mark()
      .mark().str('storage').global('torch', 'FloatStorage').str('0').str('cpu').int(1).tuple().put(0)
      .str('not a storage').put(0).get(0).op(OP.BINPERSID);
  await expectError(file(zipWith(confused)), 'format', 'PickleInvalid', ['persistent id']);

  const selfList = (p: Pickle) => p.emptyList().put(3).get(3).op(OP.APPEND);
  const ck = await openTorchFile(file(zipWith(selfList)));
  const names = ck.extras.map((e) => e.name);
  await ck.close();
  assert.deepEqual(names, ['w']);

  const spam = (p: Pickle) => {
    p.none();
    for (let i = 0; i < 200_000; i++) p.op(OP.MEMOIZE);
    return p;
  };
  const ck2 = await openCheckpoint(file(zipWith(spam, 4)));
  assert.equal(ck2.tensors.length, 0);
  await ck2.close();
});

test('huge length prefixes in tiny files are refused before allocating', async () => {
  const cases: Array<[string, (p: Pickle) => Pickle]> = [
    ['BINBYTES8 2^64-1', (p) => p.raw(0x8e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x41)],
    ['BINBYTES 4 GiB', (p) => p.raw(0x42, 0xff, 0xff, 0xff, 0xff, 0x41)],
    ['SHORT_BINBYTES 255', (p) => p.raw(0x43, 0xff, 0x41)],
    ['BINUNICODE8 2^62', (p) => p.raw(0x8d, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x41)],
  ];
  for (const [what, payload] of cases) {
    const path = file(zipWith(payload, 4));
    await expectError(path, 'format', 'PickleTruncated', []).catch((e: Error) => {
      throw new Error(`${what}: ${e.message}`);
    });
  }
  // FRAME only announces a size: a huge one is harmless, the pickle after it still has to be valid.
  const framed = (p: Pickle) => p.raw(0x95, 0, 0, 0, 0, 0, 0, 0xf0, 0x7f).none();
  const ck = await openTorchFile(file(zipWith(framed, 4)));
  assert.deepEqual(ck.extras.map((e) => [e.name, e.preview]), [['w', 'None']]);
  await ck.close();
});
