/** `loraLens.diff`: a webview panel showing one DiffReport (no document behind it, so no file access at all). */
import * as vscode from 'vscode';
import type { DiffReport } from '../core/reports';
import { PROTOCOL_VERSION } from '../protocol/messages';
import { onValidMessage, postTo, setWebviewHtml, uiStrings, webviewOptions } from './webviewHost';

export const DIFF_VIEW_TYPE = 'loraLens.diff';

export function showDiff(extensionUri: vscode.Uri, report: DiffReport, labelA: string, labelB: string): vscode.WebviewPanel {
  const title = vscode.l10n.t('{0} ↔ {1}', labelA, labelB);
  const panel = vscode.window.createWebviewPanel(DIFF_VIEW_TYPE, title, vscode.ViewColumn.Active, {
    ...webviewOptions(extensionUri),
    // Hidden panels drop their page; the report is re-sent on `ready`, so nothing needs to stay alive.
    retainContextWhenHidden: false,
  });
  setWebviewHtml(panel.webview, extensionUri, 'diff', title);
  const sub = onValidMessage(panel.webview, (m) => {
    if (m.type === 'ready' || m.type === 'refresh') {
      postTo(panel.webview, { type: 'init', protocolVersion: PROTOCOL_VERSION, view: 'diff', report, labelA, labelB, strings: uiStrings() });
    }
    // Actions and config edits make no sense here and are ignored.
  });
  panel.onDidDispose(() => sub.dispose());
  return panel;
}
