/**
 * `loraLens.inspector`: a readonly custom editor for adapter and checkpoint files. All state lives in the
 * per-panel InspectorPanel; the document is just the URI. Parsing and statistics run in the worker.
 */
import * as vscode from 'vscode';
import * as path from 'node:path';
import type { InspectReport } from '../core';
import { PROTOCOL_VERSION, type FromWebview } from '../protocol/messages';
import type { JobRunner } from './jobs';
import { LORALIB_CONFIG_FILE, mergeLoralibConfig } from './loralibConfig';
import { CONFIG_FILE_NAMES } from './links';
import { output, reportError, userMessage, logError } from './output';
import { linkedBase, readText, writeText } from './workspaceLinks';
import { onValidMessage, postTo, setWebviewHtml, uiStrings, webviewOptions } from './webviewHost';
import { reportForWebview } from './webviewReport';

export const INSPECTOR_VIEW_TYPE = 'loraLens.inspector';
/** Same editor for torch files; a second view type only because it opens under "Open With…" (priority option). */
export const INSPECTOR_TORCH_VIEW_TYPE = 'loraLens.inspector.torch';
export const INSPECTOR_VIEW_TYPES: readonly string[] = [INSPECTOR_VIEW_TYPE, INSPECTOR_TORCH_VIEW_TYPE];

export function inspectorViewTypeFor(uri: vscode.Uri): string {
  return /\.(bin|pt|pth)$/i.test(uri.fsPath) ? INSPECTOR_TORCH_VIEW_TYPE : INSPECTOR_VIEW_TYPE;
}
/** Bursty writes (a trainer saving a checkpoint) collapse into one re-read. */
const REFRESH_DEBOUNCE_MS = 300;

class InspectorPanel implements vscode.Disposable {
  private readonly subs: vscode.Disposable[] = [];
  private disposed = false;
  private initialized = false;
  private generation = 0;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  report: InspectReport | null = null;

  constructor(
    readonly uri: vscode.Uri,
    private readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    private readonly jobs: JobRunner,
    private readonly onDisposed: () => void,
  ) {
    panel.webview.options = webviewOptions(extensionUri);
    setWebviewHtml(panel.webview, extensionUri, 'inspector', path.basename(uri.fsPath));
    this.subs.push(onValidMessage(panel.webview, (m) => void this.onMessage(m)));
    this.subs.push(panel.onDidDispose(() => this.dispose()));

    const dir = path.dirname(uri.fsPath);
    const self = new vscode.RelativePattern(dir, path.basename(uri.fsPath));
    const selfWatcher = vscode.workspace.createFileSystemWatcher(self);
    selfWatcher.onDidChange(() => this.scheduleRefresh());
    selfWatcher.onDidCreate(() => this.scheduleRefresh());
    // A deleted file leaves nothing to show: close the editor like the built-in image preview does.
    selfWatcher.onDidDelete(() => this.panel.dispose());
    const configs = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(dir, `{${CONFIG_FILE_NAMES.join(',')}}`));
    configs.onDidChange(() => this.scheduleRefresh());
    configs.onDidCreate(() => this.scheduleRefresh());
    configs.onDidDelete(() => this.scheduleRefresh());
    this.subs.push(selfWatcher, configs);
  }

  scheduleRefresh(): void {
    if (this.disposed) return;
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => void this.load(), REFRESH_DEBOUNCE_MS);
  }

  private async onMessage(m: FromWebview): Promise<void> {
    switch (m.type) {
      case 'ready':
        if (m.protocolVersion !== PROTOCOL_VERSION) {
          output().warn(`Webview protocol ${m.protocolVersion} ≠ ${PROTOCOL_VERSION}; reloading it.`);
          setWebviewHtml(this.panel.webview, this.extensionUri, 'inspector', path.basename(this.uri.fsPath));
          return;
        }
        // A re-shown webview (hidden tabs lose their page) gets the cached report at once.
        this.initialized = false;
        if (this.report) this.post(this.report);
        else await this.load();
        return;
      case 'refresh':
        await this.load();
        return;
      case 'action': {
        const command = {
          linkBase: 'loraLens.linkBase',
          merge: 'loraLens.merge',
          parity: 'loraLens.parity',
          compare: 'loraLens.compare',
          unmerge: 'loraLens.unmerge',
        }[m.action];
        await vscode.commands.executeCommand(command, this.uri);
        return;
      }
      case 'saveLoralibConfig':
        await this.saveLoralibConfig(m.alpha, m.enableLora, m.fanInFanOut);
        return;
    }
  }

  private async saveLoralibConfig(alpha: number | null, enableLora: boolean[] | null, fanInFanOut: boolean | null): Promise<void> {
    // Only loralib checkpoints have this file; the path is derived from the document, never from the message.
    if (!this.report || (this.report.format !== 'loralib' && this.report.format !== 'loralib-full')) return;
    const target = vscode.Uri.file(path.join(path.dirname(this.uri.fsPath), LORALIB_CONFIG_FILE));
    try {
      const text = mergeLoralibConfig(await readText(target), { alpha, enableLora, fanInFanOut });
      await writeText(target, text);
      output().info(`Saved ${target.fsPath}`);
      await this.load();
    } catch (e) {
      reportError(vscode.l10n.t('Saving {0}', LORALIB_CONFIG_FILE), e);
    }
  }

  async load(): Promise<void> {
    if (this.disposed) return;
    const gen = ++this.generation;
    postTo(this.panel.webview, { type: 'busy', message: vscode.l10n.t('Reading {0}…', path.basename(this.uri.fsPath)) });
    try {
      const base = await linkedBase(this.uri);
      const report = await this.jobs.run({ kind: 'inspect', path: this.uri.fsPath, options: base ? { base, stats: true } : { stats: true } });
      // A newer load started or the panel closed while the worker ran: this result is stale.
      if (this.disposed || gen !== this.generation) return;
      this.report = report;
      this.post(report);
    } catch (e) {
      if (this.disposed || gen !== this.generation) return;
      logError(`Inspect ${this.uri.fsPath}`, e);
      postTo(this.panel.webview, { type: 'busy', message: null });
      postTo(this.panel.webview, { type: 'error', message: userMessage(e) });
    }
  }

  private post(full: InspectReport): void {
    const report = reportForWebview(full);
    const baseLabel = report.basePath ? path.basename(report.basePath) : null;
    postTo(this.panel.webview, { type: 'busy', message: null });
    if (this.initialized) {
      postTo(this.panel.webview, { type: 'update', report, baseLabel });
    } else {
      this.initialized = true;
      postTo(this.panel.webview, {
        type: 'init', protocolVersion: PROTOCOL_VERSION, view: 'inspector', report, baseLabel,
        trusted: vscode.workspace.isTrusted, strings: uiStrings(),
      });
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    for (const s of this.subs) s.dispose();
    this.onDisposed();
  }
}

export class InspectorProvider implements vscode.CustomReadonlyEditorProvider<vscode.CustomDocument> {
  private readonly panels = new Set<InspectorPanel>();

  constructor(private readonly extensionUri: vscode.Uri, private readonly jobs: JobRunner) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => {} };
  }

  resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel): void {
    const p = new InspectorPanel(document.uri, panel, this.extensionUri, this.jobs, () => this.panels.delete(p));
    this.panels.add(p);
  }

  /** Re-inspect every open panel showing this adapter (file, or a file inside this folder), e.g. after linking a base. */
  refresh(target?: vscode.Uri): void {
    for (const p of this.panels) {
      if (!target || p.uri.fsPath === target.fsPath || path.dirname(p.uri.fsPath) === target.fsPath) p.scheduleRefresh();
    }
  }

  reportFor(uri: vscode.Uri): InspectReport | null {
    for (const p of this.panels) if (p.uri.fsPath === uri.fsPath) return p.report;
    return null;
  }
}

export function registerInspector(context: vscode.ExtensionContext, jobs: JobRunner): { provider: InspectorProvider; disposable: vscode.Disposable } {
  const provider = new InspectorProvider(context.extensionUri, jobs);
  const options = {
    supportsMultipleEditorsPerDocument: true,
    // Without retained context a hidden tab's page is dropped; the panel re-sends its cached report on `ready`
    // and the webview restores filter/sort/selection from setState, which is cheaper than keeping 2,000 rows alive.
    webviewOptions: { retainContextWhenHidden: false },
  };
  const disposable = vscode.Disposable.from(
    ...INSPECTOR_VIEW_TYPES.map((viewType) => vscode.window.registerCustomEditorProvider(viewType, provider, options)),
  );
  return { provider, disposable };
}
