/** What every LoRA Lens webview shares: options (CSP-tight), HTML, validated messages, localized strings. */
import * as vscode from 'vscode';
import { validateFromWebview, type FromWebview, type Strings, type ToWebview, type ViewKind } from '../protocol/messages';
import { buildWebviewHtml, makeNonce } from './html';
import { output } from './output';

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return {
    enableScripts: true,
    enableForms: false,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

export function setWebviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, view: ViewKind, title: string): void {
  webview.html = buildWebviewHtml({
    view,
    title,
    cspSource: webview.cspSource,
    nonce: makeNonce(),
    scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview.js')).toString(),
    styleUri: webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview.css')).toString(),
    lang: vscode.env.language,
  });
}

/** Drops (and logs) anything that is not a well-formed message: a compromised webview gets nothing. */
export function onValidMessage(webview: vscode.Webview, handler: (m: FromWebview) => void): vscode.Disposable {
  return webview.onDidReceiveMessage((raw: unknown) => {
    const m = validateFromWebview(raw);
    if (!m) {
      output().warn('Ignored a malformed message from a webview.');
      return;
    }
    handler(m);
  });
}

export function postTo(webview: vscode.Webview, m: ToWebview): void {
  void webview.postMessage(m);
}

/** English keys the webview uses; the host sends their translations with `init`. */
const UI_KEYS = [
  'Format', 'Base model', 'Linked base', 'none', 'Layers', 'Scaling', 'Parameters', 'File size', 'Tensors', 'Warnings',
  'LoRA adapter', 'Checkpoint (no LoRA layers found)', 'Link base model…', 'Merge…', 'Run parity check…', 'Compare with…',
  'Filter', 'Singular values', 'Retry', 'Adapter comparison', 'Only in A', 'Only in B', 'Mean cosine', 'Min cosine',
];

export function uiStrings(): Strings {
  const s: Strings = {};
  for (const k of UI_KEYS) s[k] = vscode.l10n.t(k);
  return s;
}
