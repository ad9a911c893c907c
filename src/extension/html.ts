/**
 * The HTML shell of every LoRA Lens webview. vscode-free so a unit test can check the CSP: nothing inline runs
 * without the per-load nonce, and no 'unsafe-inline' / 'unsafe-eval' anywhere. Data arrives later by message.
 */
import { randomBytes } from 'node:crypto';
import type { ViewKind } from '../protocol/messages';

/** 192 bits from the OS CSPRNG (anchors used Math.random, which is predictable). */
export function makeNonce(): string {
  return randomBytes(24).toString('base64');
}

export function escapeAttribute(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/'/g, '&#39;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export interface WebviewHtmlParts {
  view: ViewKind;
  /** `webview.cspSource`. */
  cspSource: string;
  nonce: string;
  /** `asWebviewUri` of dist/webview.js and dist/webview.css. */
  scriptUri: string;
  styleUri: string;
  title: string;
  lang?: string;
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `img-src ${cspSource} data:`,
    `font-src ${cspSource}`,
  ].join('; ');
}

export function buildWebviewHtml(p: WebviewHtmlParts): string {
  const n = escapeAttribute(p.nonce);
  const testId = p.view === 'diff' ? 'diff' : 'inspector';
  return `<!DOCTYPE html>
<html lang="${escapeAttribute(p.lang ?? 'en')}">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeAttribute(contentSecurityPolicy(p.cspSource, p.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" nonce="${n}" href="${escapeAttribute(p.styleUri)}">
<title>${escapeAttribute(p.title)}</title>
</head>
<body data-view="${p.view}">
<main id="root" data-testid="${testId}" aria-busy="true"></main>
<script nonce="${n}" src="${escapeAttribute(p.scriptUri)}"></script>
</body>
</html>`;
}
