import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import {
  affectedLinks, linkForAdapter, parseLinkFile, recordMerge, resolveLinks, setBaseLink, toStoredPath,
} from '../../../src/extension/links';
import { distinctLabels } from '../../../src/extension/labels';

const WS = path.resolve('/ws');
const linkFile = path.join(WS, '.vscode', 'lora-lens.json');
const abs = (...p: string[]) => path.join(WS, ...p);

test('parses links, keeps valid entries and names the bad ones', () => {
  const text = JSON.stringify({
    $schema: './schema.json',
    links: [
      { base: 'models/base.safetensors', adapter: 'adapters/peft' },
      { base: 'b.safetensors', adapter: 'a.safetensors', merged: 'out/m.safetensors' },
      { base: 'x' },
      { base: 'b', adapter: 'a', merged: 5 },
      'nope',
    ],
  });
  const p = parseLinkFile(text);
  assert.equal(p.links.length, 2);
  assert.deepEqual(p.links[1], { base: 'b.safetensors', adapter: 'a.safetensors', merged: 'out/m.safetensors' });
  assert.equal(p.problems.length, 3);
  assert.match(p.problems[0]!, /links\[2\]/);
  assert.equal(p.raw.$schema, './schema.json');
});

test('bad JSON and wrong shapes are problems, not exceptions', () => {
  assert.equal(parseLinkFile('{').links.length, 0);
  assert.match(parseLinkFile('{').problems[0]!, /not valid JSON/);
  assert.match(parseLinkFile('[]').problems[0]!, /object/);
  assert.match(parseLinkFile('{"links": {}}').problems[0]!, /array/);
  assert.deepEqual(parseLinkFile('').links, []);
});

test('paths resolve against the folder and are stored relative with forward slashes', () => {
  const [l] = resolveLinks(WS, [{ base: 'models/base.safetensors', adapter: '../elsewhere/a', merged: '/abs/m.safetensors' }]);
  assert.equal(l!.base, abs('models', 'base.safetensors'));
  assert.equal(l!.adapter, path.resolve(WS, '..', 'elsewhere', 'a'));
  assert.equal(l!.merged, path.resolve('/abs/m.safetensors'));
  assert.equal(toStoredPath(WS, abs('models', 'base.safetensors')), 'models/base.safetensors');
  assert.equal(toStoredPath(WS, path.resolve('/other/x.bin')), path.resolve('/other/x.bin'));
});

test('affected links: link file → all; checkpoints; configs beside file adapters and inside folder adapters', () => {
  const links = resolveLinks(WS, [
    { base: 'base.safetensors', adapter: 'peft-a' }, // folder adapter
    { base: 'base.safetensors', adapter: 'loralib/adapter.pt', merged: 'out/merged.safetensors' }, // file adapter
    { base: 'sharded', adapter: 'kohya.safetensors' }, // sharded base folder
  ]);
  const idx = (changed: string) => affectedLinks(links, changed, linkFile).map((l) => l.index);
  assert.deepEqual(idx(linkFile), [0, 1, 2]);
  assert.deepEqual(idx(abs('base.safetensors')), [0, 1]);
  assert.deepEqual(idx(abs('peft-a', 'adapter_config.json')), [0]);
  assert.deepEqual(idx(abs('peft-a', 'adapter_model.safetensors')), [0]);
  assert.deepEqual(idx(abs('loralib', 'lora_config.json')), [1]);
  assert.deepEqual(idx(abs('loralib', 'notes.json')), []);
  assert.deepEqual(idx(abs('out', 'merged.safetensors')), [1]);
  assert.deepEqual(idx(abs('sharded', 'model-00001-of-00002.safetensors')), [2]);
  assert.deepEqual(idx(abs('lora_config.json')), [2], 'config beside a top-level file adapter');
  assert.deepEqual(idx(abs('unrelated.safetensors')), []);
});

test('linkForAdapter finds a folder link from the weights file inside it', () => {
  const links = resolveLinks(WS, [{ base: 'b.safetensors', adapter: 'peft-a' }, { base: 'c.safetensors', adapter: 'x.safetensors' }]);
  assert.equal(linkForAdapter(links, abs('peft-a', 'adapter_model.safetensors'))?.base, abs('b.safetensors'));
  assert.equal(linkForAdapter(links, abs('peft-a'))?.base, abs('b.safetensors'));
  assert.equal(linkForAdapter(links, abs('x.safetensors'))?.base, abs('c.safetensors'));
  assert.equal(linkForAdapter(links, abs('y.safetensors')), undefined);
});

test('setBaseLink adds, then replaces the base (dropping a merged output made from the old base)', () => {
  let text = setBaseLink(null, WS, abs('m', 'base.safetensors'), abs('peft'));
  assert.deepEqual(parseLinkFile(text).links, [{ base: 'm/base.safetensors', adapter: 'peft' }]);
  text = recordMerge(text, WS, abs('m', 'base.safetensors'), abs('peft'), abs('out', 'merged.safetensors'));
  assert.deepEqual(parseLinkFile(text).links, [{ base: 'm/base.safetensors', adapter: 'peft', merged: 'out/merged.safetensors' }]);
  const same = setBaseLink(text, WS, abs('m', 'base.safetensors'), abs('peft'));
  assert.deepEqual(parseLinkFile(same).links, [{ base: 'm/base.safetensors', adapter: 'peft', merged: 'out/merged.safetensors' }]);
  const other = setBaseLink(text, WS, abs('m', 'base2.safetensors'), abs('peft'));
  assert.deepEqual(parseLinkFile(other).links, [{ base: 'm/base2.safetensors', adapter: 'peft' }]);
});

test('recordMerge keeps unknown fields and other links, and updates a re-merge in place', () => {
  const start = JSON.stringify({ $schema: 'x', comment: 'keep me', links: [{ base: 'b', adapter: 'other' }] });
  let text = recordMerge(start, WS, abs('b'), abs('a'), abs('m1.safetensors'));
  text = recordMerge(text, WS, abs('b2'), abs('a'), abs('m1.safetensors'));
  text = recordMerge(text, WS, abs('b2'), abs('a'), abs('m2.safetensors'));
  const p = parseLinkFile(text);
  assert.equal(p.raw.comment, 'keep me');
  assert.deepEqual(p.links, [
    { base: 'b', adapter: 'other' },
    { base: 'b2', adapter: 'a', merged: 'm1.safetensors' },
    { base: 'b2', adapter: 'a', merged: 'm2.safetensors' },
  ]);
  assert.ok(text.endsWith('\n'));
});

test('diff labels: the fewest trailing segments that tell two adapters apart', () => {
  const p = (...s: string[]) => path.resolve('/ws', ...s);
  assert.deepEqual(distinctLabels(p('llama-f16', 'adapter', 'adapter_model.safetensors'), p('llama-bf16-rslora', 'adapter', 'adapter_model.safetensors')), ['llama-f16/adapter', 'llama-bf16-rslora/adapter']);
  assert.deepEqual(distinctLabels(p('run1', 'adapter_model.safetensors'), p('run2')), ['run1', 'run2']);
  assert.deepEqual(distinctLabels(p('a.safetensors'), p('b.safetensors')), ['a.safetensors', 'b.safetensors']);
  assert.deepEqual(distinctLabels(p('x', 'lora.safetensors'), p('y', 'lora.safetensors')), ['x/lora.safetensors', 'y/lora.safetensors']);
  const same = distinctLabels(p('x', 'lora.safetensors'), p('x', 'lora.safetensors'));
  assert.equal(same[0], same[1], 'the same file twice stays the same label');
});
