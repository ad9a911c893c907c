import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { PROTOCOL_VERSION } from '../../../src/protocol/messages';
import {
  DIFF_PANELS_KEY, forgetDiffPanel, lookupDiffPanel, MAX_DIFF_PANELS, newDiffPanelId, recordDiffPanel, type StateStore,
} from '../../../src/extension/diffPanelStore';

/** workspaceState stand-in: values go through JSON like VS Code's Memento does. */
class FakeMemento implements StateStore {
  readonly data = new Map<string, string>();
  get<T>(key: string): T | undefined {
    const v = this.data.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }
  async update(key: string, value: unknown): Promise<void> {
    this.data.set(key, JSON.stringify(value));
  }
}

const A = path.resolve('/ws/llama-f16/adapter');
const B = path.resolve('/ws/llama-bf16-rslora/adapter');
const state = (diffPanelId: string) => ({ protocolVersion: PROTOCOL_VERSION, diffPanelId });

test('ids are 128-bit hex and unique', () => {
  const ids = new Set(Array.from({ length: 200 }, newDiffPanelId));
  assert.equal(ids.size, 200);
  for (const id of ids) assert.match(id, /^[0-9a-f]{32}$/);
});

test('a recorded panel is found from its webview state; the paths come from the host record', async () => {
  const m = new FakeMemento();
  const id = newDiffPanelId();
  await recordDiffPanel(m, id, { a: A, b: B, labelA: 'adapter', labelB: 'adapter' });
  const found = lookupDiffPanel(m, state(id));
  assert.equal(found?.id, id);
  assert.equal(found?.record.a, A);
  assert.equal(found?.record.b, B);
});

test('unknown ids, forged states and tampered records restore nothing', async () => {
  const m = new FakeMemento();
  const id = newDiffPanelId();
  await recordDiffPanel(m, id, { a: A, b: B, labelA: 'a', labelB: 'b' });
  assert.equal(lookupDiffPanel(m, state(newDiffPanelId())), null, 'an id this workspace never recorded');
  assert.equal(lookupDiffPanel(m, { ...state(id), a: '/etc/passwd' }), null, 'a path smuggled next to the id');
  assert.equal(lookupDiffPanel(m, { protocolVersion: PROTOCOL_VERSION, diffPanelId: '__proto__' }), null);
  assert.equal(lookupDiffPanel(m, undefined), null);
  // A record that is not two absolute paths (e.g. edited storage) is ignored, not trusted.
  await m.update(DIFF_PANELS_KEY, { [id]: { a: 'relative/x', b: B, labelA: 'a', labelB: 'b', at: 1 } });
  assert.equal(lookupDiffPanel(m, state(id)), null);
  await m.update(DIFF_PANELS_KEY, 'garbage');
  assert.equal(lookupDiffPanel(m, state(id)), null);
});

test('closing forgets the panel; only the newest records are kept', async () => {
  const m = new FakeMemento();
  const first = newDiffPanelId();
  const second = newDiffPanelId();
  await recordDiffPanel(m, first, { a: A, b: B, labelA: 'a', labelB: 'b' }, 1);
  await recordDiffPanel(m, second, { a: B, b: A, labelA: 'b', labelB: 'a' }, 2);
  await forgetDiffPanel(m, first);
  assert.equal(lookupDiffPanel(m, state(first)), null);
  assert.equal(lookupDiffPanel(m, state(second))?.record.a, B);
  const ids = Array.from({ length: MAX_DIFF_PANELS + 5 }, newDiffPanelId);
  for (const [i, id] of ids.entries()) await recordDiffPanel(m, id, { a: A, b: B, labelA: 'a', labelB: 'b' }, 10 + i);
  const kept = Object.keys(m.get<Record<string, unknown>>(DIFF_PANELS_KEY)!);
  assert.equal(kept.length, MAX_DIFF_PANELS);
  assert.equal(lookupDiffPanel(m, state(ids[0]!)), null, 'the oldest is evicted');
  assert.ok(lookupDiffPanel(m, state(ids[ids.length - 1]!)), 'the newest is kept');
});
