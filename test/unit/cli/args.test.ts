import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, parseMask, num, parseAdapterArg } from '../../../src/cli/args';

const spec = {
  base: { type: 'string', help: '' },
  adapter: { type: 'list', help: '' },
  json: { type: 'bool', help: '' },
  alpha: { type: 'string', help: '' },
} as const;

test('parses values, repeats and booleans', () => {
  const p = parseArgs(['x', '--base', 'b', '--adapter=a1', '--adapter', 'a2:0.5', '--json'], spec);
  assert.deepEqual(p.positional, ['x']);
  assert.deepEqual(p.flags.get('adapter'), ['a1', 'a2:0.5']);
  assert.equal(p.flags.get('json'), true);
});

test('unknown flags, missing values and repeated single flags are typed errors', () => {
  assert.throws(() => parseArgs(['--alpah', '3'], spec), { code: 'UnknownFlag' });
  assert.throws(() => parseArgs(['--base'], spec), { code: 'MissingValue' });
  assert.throws(() => parseArgs(['--base', 'a', '--base', 'b'], spec), { code: 'RepeatedFlag' });
  assert.throws(() => parseArgs(['--json=1'], spec), { code: 'BadFlag' });
  assert.throws(() => num(parseArgs(['--alpha', 'x16'], spec), 'alpha'), { code: 'BadNumber' });
});

test('masks', () => {
  assert.deepEqual(parseMask('1,0,1'), [true, false, true]);
  assert.deepEqual(parseMask('q,v'), [true, false, true]);
  assert.deepEqual(parseMask('true,true'), [true, true]);
  assert.throws(() => parseMask('1,2'), { code: 'BadMask' });
});

test('adapter weights', () => {
  assert.deepEqual(parseAdapterArg('a/b:0.5'), { path: 'a/b', weight: 0.5 });
  assert.deepEqual(parseAdapterArg('a/b'), { path: 'a/b', weight: 1 });
  assert.deepEqual(parseAdapterArg('C:\\x\\y'), { path: 'C:\\x\\y', weight: 1 });
  assert.deepEqual(parseAdapterArg('a:-1'), { path: 'a', weight: -1 });
});
