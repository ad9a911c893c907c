import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  INSPECTOR_ACTIONS, MAX_MASK_LENGTH, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, validateDiffPanelState, validateFromWebview,
  validatePersistedState,
} from '../../../src/protocol/messages';

test('accepts every well-formed message and returns a fresh copy', () => {
  assert.deepEqual(validateFromWebview({ type: 'ready', protocolVersion: PROTOCOL_VERSION }), { type: 'ready', protocolVersion: PROTOCOL_VERSION });
  for (const action of INSPECTOR_ACTIONS) assert.deepEqual(validateFromWebview({ type: 'action', action }), { type: 'action', action });
  assert.deepEqual(validateFromWebview({ type: 'refresh' }), { type: 'refresh' });
  const mask = [true, false, true];
  const m = validateFromWebview({ type: 'saveLoralibConfig', alpha: 16, enableLora: mask, fanInFanOut: true });
  assert.deepEqual(m, { type: 'saveLoralibConfig', alpha: 16, enableLora: [true, false, true], fanInFanOut: true });
  assert.ok(m?.type === 'saveLoralibConfig' && m.enableLora !== mask, 'the mask is copied, not aliased');
});

test('rejects unknown types and non-objects', () => {
  for (const bad of [null, undefined, 42, 'ready', [], [{ type: 'ready' }], {}, { type: 7 }, { type: 'openFile' }, { type: 'READY', protocolVersion: 1 }, { type: '__proto__' }]) {
    assert.equal(validateFromWebview(bad), null, JSON.stringify(bad));
  }
});

test('a forged message can never carry a path', () => {
  const forged = [
    { type: 'action', action: 'merge', path: '/etc/passwd' },
    { type: 'action', action: 'merge', out: '/home/user/.ssh/authorized_keys' },
    { type: 'saveLoralibConfig', alpha: 8, enableLora: null, fanInFanOut: null, target: '../../evil.json' },
    { type: 'refresh', uri: 'file:///tmp/x' },
    { type: 'ready', protocolVersion: 1, file: 'x' },
    { type: 'action', action: '/tmp/out.safetensors' },
    { type: 'action', action: 'writeFile' },
  ];
  for (const f of forged) assert.equal(validateFromWebview(f), null, JSON.stringify(f));
});

test('field types and ranges are checked', () => {
  const base = { type: 'saveLoralibConfig', alpha: 8, enableLora: [true, false, true], fanInFanOut: false };
  const bad: Record<string, unknown>[] = [
    { ...base, alpha: '8' }, { ...base, alpha: -1 }, { ...base, alpha: 0 }, { ...base, alpha: Number.NaN },
    { ...base, alpha: Infinity }, { ...base, alpha: 1e9 }, { ...base, enableLora: [] }, { ...base, enableLora: [1, 0, 1] },
    { ...base, enableLora: 'true,false' }, { ...base, enableLora: Array(MAX_MASK_LENGTH + 1).fill(true) },
    { ...base, fanInFanOut: 'yes' }, { type: 'saveLoralibConfig', alpha: null, enableLora: null, fanInFanOut: null },
    { type: 'saveLoralibConfig', alpha: 8 }, { type: 'ready', protocolVersion: '1' }, { type: 'ready', protocolVersion: 1.5 },
  ];
  for (const b of bad) assert.equal(validateFromWebview(b), null, JSON.stringify(b));
  assert.notEqual(validateFromWebview({ ...base, enableLora: Array(MAX_MASK_LENGTH).fill(true) }), null);
});

test('oversized or unserializable payloads are rejected', () => {
  const big = { type: 'action', action: 'merge'.padEnd(MAX_MESSAGE_BYTES + 10, 'x') };
  assert.equal(validateFromWebview(big), null);
  const cyclic: Record<string, unknown> = { type: 'refresh' };
  cyclic.self = cyclic;
  assert.equal(validateFromWebview(cyclic), null);
  assert.equal(validateFromWebview({ type: 'refresh', n: 10n }), null);
});

test('persisted state from another protocol version is dropped', () => {
  const s = { protocolVersion: PROTOCOL_VERSION, filter: 'q_proj', sortKey: 'r', sortDesc: true, selected: 'a.b', scrollTop: 120 };
  assert.deepEqual(validatePersistedState(s), s);
  assert.equal(validatePersistedState({ ...s, protocolVersion: PROTOCOL_VERSION + 1 }), null);
  assert.equal(validatePersistedState({ ...s, scrollTop: -5 }), null);
  assert.equal(validatePersistedState({ ...s, filter: 3 }), null);
  assert.equal(validatePersistedState(undefined), null);
});

test('diff panel state: only a well-formed opaque id, never a path', () => {
  const id = 'a'.repeat(32);
  assert.deepEqual(validateDiffPanelState({ protocolVersion: PROTOCOL_VERSION, diffPanelId: id }), { protocolVersion: PROTOCOL_VERSION, diffPanelId: id });
  for (const bad of [
    null, undefined, 'x', [], {},
    { protocolVersion: PROTOCOL_VERSION + 1, diffPanelId: id },
    { protocolVersion: PROTOCOL_VERSION, diffPanelId: id, a: '/etc/passwd' }, // a forged path next to the id
    { protocolVersion: PROTOCOL_VERSION, diffPanelId: '/home/user/adapter' },
    { protocolVersion: PROTOCOL_VERSION, diffPanelId: '../'.repeat(11) },
    { protocolVersion: PROTOCOL_VERSION, diffPanelId: 'A'.repeat(32) },
    { protocolVersion: PROTOCOL_VERSION, diffPanelId: 'a'.repeat(33) },
    { protocolVersion: PROTOCOL_VERSION, diffPanelId: 42 },
  ]) assert.equal(validateDiffPanelState(bad), null, JSON.stringify(bad));
});
