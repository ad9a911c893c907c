/**
 * A malicious pickle corpus: each file asks for code execution or abuses the interpreter. Each must fail with
 * the exact code and a message naming what was asked for, and nothing may run (the marker file stays absent).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openTorch } from '../../../src/core/formats/torch/index';
import { OP, Pickle, f32Bytes, torchLegacy, torchZip } from './build';
import { rejectsWith, tempDir, tempFile } from './helpers';

const marker = join(tempDir(), 'PWNED');
const shell = `touch ${marker}`;

/** data.pkl = {"w": <payload>} inside an otherwise well-formed torch archive. */
function zipWith(payload: (p: Pickle) => Pickle, protocol = 2): Uint8Array {
  const p = new Pickle().proto(protocol).global('collections', 'OrderedDict').emptyTuple().reduce().mark().str('w');
  return torchZip({ pickle: payload(p).setitems().stop().bytes(), storages: { '0': f32Bytes([1]) } });
}

/** callable(arg) through GLOBAL + TUPLE1 + REDUCE, the classic __reduce__ exploit. */
const callGlobal = (module: string, name: string, arg: string) => (p: Pickle) =>
  p.global(module, name).str(arg).op(OP.TUPLE1).reduce();

const refusedGlobals: Array<[string, string, string]> = [
  ['os', 'system', 'os.system'],
  ['posix', 'system', 'posix.system'],
  ['nt', 'system', 'nt.system'],
  ['builtins', 'eval', 'builtins.eval'],
  ['builtins', 'exec', 'builtins.exec'],
  ['builtins', 'getattr', 'builtins.getattr'],
  ['builtins', '__import__', 'builtins.__import__'],
  ['__builtin__', 'eval', 'builtins.eval'], // Python 2 name, remapped before the check
  ['subprocess', 'Popen', 'subprocess.Popen'],
  ['subprocess', 'check_output', 'subprocess.check_output'],
  ['torch', 'load', 'torch.load'],
  ['torch.storage', '_load_from_bytes', 'torch.storage._load_from_bytes'],
  ['functools', 'partial', 'functools.partial'],
  ['runpy', '_run_code', 'runpy._run_code'],
  ['copyreg', '_reconstructor', 'copyreg._reconstructor'],
  ['numpy.core.multiarray', '_reconstruct', 'numpy.core.multiarray._reconstruct'],
  ['torch.nn.modules.linear', 'Linear', 'torch.nn.modules.linear.Linear'],
  ['__main__', 'Evil', '__main__.Evil'],
  ['sys', 'modules', 'sys.modules'],
];

for (const [module, name, qualname] of refusedGlobals) {
  test(`GLOBAL ${module}.${name} is refused by name`, async () => {
    const path = tempFile(`g-${module}-${name}.pt`, zipWith(callGlobal(module, name, shell)));
    await rejectsWith(openTorch(path), 'security', 'UnsafeGlobal', [`'${qualname}'`, 'GLOBAL at byte'], path);
    assert.equal(existsSync(marker), false);
  });
}

test('STACK_GLOBAL (protocol 4) to os.system is refused too', async () => {
  const payload = (p: Pickle) => p.stackGlobal('os', 'system').str(shell).op(OP.TUPLE1).reduce();
  const path = tempFile('stack-global.pt', zipWith(payload, 4));
  await rejectsWith(openTorch(path), 'security', 'UnsafeGlobal', ["'os.system'", 'STACK_GLOBAL'], path);
  assert.equal(existsSync(marker), false);
});

test('nested REDUCE chains: getattr(__import__("os"), "system")(cmd) stops at the first global', async () => {
  const payload = (p: Pickle) =>
    p.global('builtins', 'getattr').mark()
      .global('builtins', '__import__').str('os').op(OP.TUPLE1).reduce()
      .str('system').tuple().reduce()
      .str(shell).op(OP.TUPLE1).reduce();
  const path = tempFile('chain.pt', zipWith(payload));
  await rejectsWith(openTorch(path), 'security', 'UnsafeGlobal', ["'builtins.getattr'"], path);
  assert.equal(existsSync(marker), false);
});

test('an allow-listed rebuild function cannot smuggle a refused callable', async () => {
  // torch._tensor._rebuild_from_type_v2(func, type, args, state) calls func: func must itself be allow-listed.
  const payload = (p: Pickle) =>
    p.global('torch._tensor', '_rebuild_from_type_v2').mark()
      .global('builtins', 'exec').global('torch', 'Tensor').str(shell).op(OP.TUPLE1).emptyDict().tuple().reduce();
  const path = tempFile('smuggle.pt', zipWith(payload));
  await rejectsWith(openTorch(path), 'security', 'UnsafeGlobal', ["'builtins.exec'"], path);
  assert.equal(existsSync(marker), false);
});

test('REDUCE on a value that is not an allow-listed callable is malformed', async () => {
  const payload = (p: Pickle) => p.global('collections', 'OrderedDict').emptyTuple().reduce().str(shell).op(OP.TUPLE1).reduce();
  const path = tempFile('call-dict.pt', zipWith(payload));
  await rejectsWith(openTorch(path), 'format', 'PickleInvalid', ['OrderedDict is not callable', 'REDUCE'], path);
});

test('a legacy stream that starts with an exploit is refused before anything else', async () => {
  const exploit = new Pickle().proto(2).global('os', 'system').str(shell).op(OP.TUPLE1).reduce().stop().bytes();
  const path = tempFile('legacy-exploit.pt', torchLegacy(exploit, []).subarray(0)); // magic first, then the exploit as main
  await rejectsWith(openTorch(path), 'security', 'UnsafeGlobal', ["'os.system'"], path);
  const first = tempFile('legacy-first.pt', exploit);
  await rejectsWith(openTorch(first), 'security', 'UnsafeGlobal', ["'os.system'"], first);
  assert.equal(existsSync(marker), false);
});

const refusedOpcodes: Array<[string, number, (p: Pickle) => Pickle]> = [
  ['INST', 0x69, (p) => p.raw(OP.INST, ...Buffer.from('os\nsystem\n')).str(shell)],
  ['OBJ', 0x6f, (p) => p.mark().global('collections', 'OrderedDict').op(OP.OBJ)],
  ['EXT1', 0x82, (p) => p.raw(OP.EXT1, 1)],
  ['NEWOBJ_EX', 0x92, (p) => p.global('collections', 'OrderedDict').emptyTuple().emptyDict().raw(0x92)],
  ['INT', 0x49, (p) => p.raw(OP.INT, ...Buffer.from('1\n'))],
  ['PERSID', 0x50, (p) => p.raw(0x50, ...Buffer.from('0\n'))],
  ['DUP', 0x32, (p) => p.none().op(OP.DUP)],
  ['unknown', 0xff, (p) => p.raw(0xff)],
];

for (const [name, code, payload] of refusedOpcodes) {
  test(`opcode ${name} is refused with its name and position`, async () => {
    const path = tempFile(`op-${name}.pt`, zipWith(payload));
    const hex = `0x${code.toString(16).padStart(2, '0')}`;
    await rejectsWith(openTorch(path), 'security', 'UnsupportedOpcode', [`${hex} (${name})`, 'at byte'], path);
    assert.equal(existsSync(marker), false);
  });
}

test('memo abuse: BINGET / LONG_BINGET of an index never stored', async () => {
  const p1 = tempFile('memo1.pt', zipWith((p) => p.get(5)));
  await rejectsWith(openTorch(p1), 'format', 'PickleMemo', ['memo index 5', 'BINGET'], p1);
  const p2 = tempFile('memo2.pt', zipWith((p) => p.none().put(0).op(OP.LONG_BINGET).u32(0xffffffff)));
  await rejectsWith(openTorch(p2), 'format', 'PickleMemo', ['memo index 4294967295', 'LONG_BINGET'], p2);
});

test('a 4 GB BINUNICODE length in a tiny file is refused before allocating', async () => {
  const p1 = tempFile('huge-str.pt', zipWith((p) => p.op(OP.BINUNICODE).u32(0xfffffff0).raw(0x41, 0x41)));
  await rejectsWith(openTorch(p1), 'format', 'PickleTruncated', ['BINUNICODE', '4294967280'], p1);
  // BINUNICODE8 (protocol 4) claiming 2^63 bytes.
  const p2 = tempFile('huge-str8.pt', zipWith((p) => p.raw(0x8d, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x41), 4));
  await rejectsWith(openTorch(p2), 'format', 'PickleTruncated', ['BINUNICODE8'], p2);
});

test('MARK bombs hit the nesting cap', async () => {
  const path = tempFile('marks.pt', zipWith((p) => p.raw(...new Array<number>(100_000).fill(OP.MARK))));
  await rejectsWith(openTorch(path), 'format', 'PickleTooDeep', ['MARK'], path);
});

test('deeply nested tuples as dict keys and deeply nested dicts do not overflow the JS stack', async () => {
  const deepKey = (p: Pickle) => {
    p.global('collections', 'OrderedDict').emptyTuple().reduce().none();
    for (let i = 0; i < 100_000; i++) p.op(OP.TUPLE1);
    return p.none().op(OP.SETITEM);
  };
  const p1 = tempFile('deep-key.pt', zipWith(deepKey));
  await rejectsWith(openTorch(p1), 'format', 'PickleInvalid', ['unhashable'], p1);

  const depth = 50_000;
  const deepDicts = (p: Pickle) => {
    for (let i = 0; i < depth; i++) p.emptyDict().str('k');
    p.none();
    for (let i = 0; i < depth; i++) p.op(OP.SETITEM);
    return p;
  };
  const p2 = tempFile('deep-dict.pt', zipWith(deepDicts));
  const ckpt = await openTorch(p2);
  assert.equal(ckpt.tensors.length, 0);
  assert.ok(ckpt.extras.some((e) => e.preview === 'nested too deep'));
  await ckpt.close();
});

test('a dict that contains itself is reported, not walked forever', async () => {
  const payload = (p: Pickle) => p.emptyDict().put(9).str('self').get(9).op(OP.SETITEM);
  const path = tempFile('cycle.pt', zipWith(payload));
  const ckpt = await openTorch(path);
  assert.deepEqual(ckpt.extras.map((e) => [e.name, e.preview]), [['w.self', 'contains itself']]);
  await ckpt.close();
});

test('structural abuse: BUILD on a str, APPEND to a dict, odd SETITEMS, bad persistent id, protocol 6', async () => {
  const cases: Array<[string, (p: Pickle) => Pickle, string]> = [
    ['build', (p) => p.str('x').emptyDict().op(OP.BUILD), 'cannot BUILD a str'],
    ['append', (p) => p.emptyDict().none().op(OP.APPEND), 'cannot append to dict'],
    ['odd', (p) => p.emptyDict().mark().none().setitems(), 'odd number'],
    ['persid', (p) => p.str('nope').op(OP.BINPERSID), 'persistent id'],
    ['underflow', (p) => p.op(OP.TUPLE2), 'stack underflow'],
  ];
  for (const [name, payload, mention] of cases) {
    const path = tempFile(`bad-${name}.pt`, zipWith(payload));
    await rejectsWith(openTorch(path), 'format', 'PickleInvalid', [mention], path);
  }
  const proto6 = torchZip({ pickle: new Pickle().proto(6).none().stop().bytes() });
  const path = tempFile('proto6.pt', proto6);
  await rejectsWith(openTorch(path), 'format', 'PickleInvalid', ['protocol 6'], path);
});
