import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildWebviewHtml, contentSecurityPolicy, escapeAttribute, makeNonce } from '../../../src/extension/html';

const CSP_SOURCE = 'https://file+.vscode-resource.vscode-cdn.net';

function cspOf(html: string): Map<string, string[]> {
  const m = /<meta http-equiv="Content-Security-Policy" content="([^"]*)">/.exec(html);
  assert.ok(m, 'CSP meta tag present');
  const text = m[1]!.replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  const directives = new Map<string, string[]>();
  for (const d of text.split(';').map((x) => x.trim()).filter(Boolean)) {
    const [name, ...values] = d.split(/\s+/);
    directives.set(name!, values);
  }
  return directives;
}

test('nonces are 128+ bits of base64 and never repeat', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const n = makeNonce();
    assert.match(n, /^[A-Za-z0-9+/]+={0,2}$/);
    assert.ok(Buffer.from(n, 'base64').length * 8 >= 128, 'at least 128 bits');
    assert.ok(!seen.has(n));
    seen.add(n);
  }
});

for (const view of ['inspector', 'diff'] as const) {
  test(`${view} HTML has a strict CSP and only nonce'd scripts`, () => {
    const nonce = makeNonce();
    const html = buildWebviewHtml({ view, cspSource: CSP_SOURCE, nonce, scriptUri: `${CSP_SOURCE}/dist/webview.js`, styleUri: `${CSP_SOURCE}/dist/webview.css`, title: 'a<b>"c' });
    assert.doesNotMatch(html, /unsafe-inline|unsafe-eval|unsafe-hashes|strict-dynamic/);
    const csp = cspOf(html);
    assert.deepEqual(csp.get('default-src'), ["'none'"]);
    assert.deepEqual(csp.get('script-src'), [`'nonce-${nonce}'`]);
    assert.deepEqual(csp.get('style-src'), [CSP_SOURCE, `'nonce-${nonce}'`]);
    assert.deepEqual(csp.get('img-src'), [CSP_SOURCE, 'data:']);
    assert.deepEqual(csp.get('font-src'), [CSP_SOURCE]);
    assert.equal(csp.get('connect-src'), undefined, 'no network access');
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.equal(scripts.length, 1);
    for (const [, attrs, body] of scripts) {
      assert.ok(attrs!.includes(`nonce="${nonce}"`), 'script carries the nonce');
      assert.equal(body!.trim(), '', 'no inline script body');
    }
    assert.doesNotMatch(html, /\sstyle="/, 'no inline style attributes');
    assert.doesNotMatch(html, /\son[a-z]+=/i, 'no inline event handlers');
    assert.match(html, new RegExp(`data-testid="${view}"`));
    assert.ok(html.includes('<title>a&lt;b&gt;&quot;c</title>'), 'title escaped');
  });
}

test('the policy string is built only from the inputs', () => {
  assert.equal(contentSecurityPolicy('S', 'N'), "default-src 'none'; script-src 'nonce-N'; style-src S 'nonce-N'; img-src S data:; font-src S");
  assert.equal(escapeAttribute(`"'<>&`), '&quot;&#39;&lt;&gt;&amp;');
});
