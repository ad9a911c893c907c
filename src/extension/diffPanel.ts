/**
 * `loraLens.diff`: a webview panel showing one DiffReport (no document behind it, so no file access from the
 * webview at all). A serializer brings panels back after a window reload: the webview keeps only an opaque panel
 * id; the two adapter paths come from what the host recorded in workspaceState when the user picked them.
 */
import * as vscode from 'vscode';
import type { DiffReport } from '../core';
import { PROTOCOL_VERSION } from '../protocol/messages';
import { forgetDiffPanel, lookupDiffPanel, newDiffPanelId, recordDiffPanel, type DiffPanelRecord } from './diffPanelStore';
import type { JobRunner } from './jobs';
import { logError, output, userMessage } from './output';
import { onValidMessage, postTo, setWebviewHtml, uiStrings, webviewOptions } from './webviewHost';
import { linkedBase } from './workspaceLinks';

export const DIFF_VIEW_TYPE = 'loraLens.diff';

const titleOf = (labelA: string, labelB: string) => vscode.l10n.t('{0} ↔ {1}', labelA, labelB);

/** Runs the diff job for two adapters (with the base linked to the first, as the Compare command does). */
export async function computeDiff(jobs: JobRunner, a: string, b: string): Promise<DiffReport> {
  const base = await linkedBase(vscode.Uri.file(a));
  return jobs.run({ kind: 'diff', options: { a: { path: a }, b: { path: b }, ...(base ? { base } : {}) } });
}

export class DiffPanels implements vscode.Disposable {
  private readonly registration: vscode.Disposable;

  constructor(private readonly context: vscode.ExtensionContext, private readonly jobs: JobRunner) {
    this.registration = vscode.window.registerWebviewPanelSerializer(DIFF_VIEW_TYPE, {
      deserializeWebviewPanel: (panel, state) => this.restore(panel, state),
    });
  }

  /** A new panel for a report the Compare command computed from two adapters the user picked. */
  show(report: DiffReport, a: string, b: string, labelA: string, labelB: string): vscode.WebviewPanel {
    const panel = vscode.window.createWebviewPanel(DIFF_VIEW_TYPE, titleOf(labelA, labelB), vscode.ViewColumn.Active, {
      ...webviewOptions(this.context.extensionUri),
      // Hidden panels drop their page; the report is re-sent on `ready`, so nothing needs to stay alive.
      retainContextWhenHidden: false,
    });
    const id = newDiffPanelId();
    void recordDiffPanel(this.context.workspaceState, id, { a, b, labelA, labelB });
    this.attach(panel, id, { a, b, labelA, labelB }, report);
    return panel;
  }

  private async restore(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    panel.webview.options = webviewOptions(this.context.extensionUri);
    const found = lookupDiffPanel(this.context.workspaceState, state);
    if (!found) {
      // Unknown or forged state: show why instead of an empty tab, and read nothing.
      output().warn('A restored adapter comparison had no matching record in this workspace; not restored.');
      this.attach(panel, null, null, null, vscode.l10n.t('This comparison cannot be restored. Run "LoRA Lens: Compare Adapters…" again.'));
      return;
    }
    const { id, record } = found;
    panel.title = titleOf(record.labelA, record.labelB);
    this.attach(panel, id, record, null);
  }

  /**
   * Wires one panel: the report (given, or computed from the record on first `ready`), messages, and forgetting the
   * record when the user closes the panel.
   */
  private attach(
    panel: vscode.WebviewPanel,
    id: string | null,
    record: Omit<DiffPanelRecord, 'at'> | null,
    report: DiffReport | null,
    failure: string | null = null,
  ): void {
    const title = record ? titleOf(record.labelA, record.labelB) : panel.title;
    setWebviewHtml(panel.webview, this.context.extensionUri, 'diff', title);
    let current: Promise<DiffReport> | null = report ? Promise.resolve(report) : null;
    let disposed = false;
    const send = async () => {
      if (failure !== null || !record) {
        postTo(panel.webview, { type: 'error', message: failure ?? '' });
        return;
      }
      if (!current) {
        postTo(panel.webview, { type: 'busy', message: vscode.l10n.t('Comparing {0} with {1}…', record.labelA, record.labelB) });
        current = computeDiff(this.jobs, record.a, record.b);
        // A failed run is retried on the next `refresh` (the error view's Retry button).
        current.catch(() => (current = null));
      }
      try {
        const r = await current;
        if (disposed) return;
        postTo(panel.webview, { type: 'busy', message: null });
        postTo(panel.webview, {
          type: 'init', protocolVersion: PROTOCOL_VERSION, view: 'diff', report: r, labelA: record.labelA, labelB: record.labelB,
          diffPanelId: id, strings: uiStrings(),
        });
      } catch (e) {
        if (disposed) return;
        logError(`Compare ${record.a} ↔ ${record.b}`, e);
        postTo(panel.webview, { type: 'busy', message: null });
        postTo(panel.webview, { type: 'error', message: userMessage(e) });
      }
    };
    const sub = onValidMessage(panel.webview, (m) => {
      if (m.type === 'ready' || m.type === 'refresh') void send();
      // Actions and config edits make no sense here and are ignored.
    });
    panel.onDidDispose(() => {
      disposed = true;
      sub.dispose();
      if (id) void forgetDiffPanel(this.context.workspaceState, id);
    });
  }

  dispose(): void {
    this.registration.dispose();
  }
}
