/**
 * Parity check on save: when a config of a linked adapter is saved, lora-lens.json changes, or a linked checkpoint
 * changes on disk, re-check the affected links in the background (debounced, one run per link, latest wins) and
 * report failures as diagnostics on the config file plus a status bar item. Never runs in an untrusted workspace.
 */
import * as vscode from 'vscode';
import * as path from 'node:path';
import type { ParityReport } from '../core';
import type { JobRunner } from './jobs';
import { affectedLinks, CONFIG_FILE_NAMES, LINK_FILE, type ResolvedLink } from './links';
import { logError, output, userMessage } from './output';
import { findJsonKey, parityFindings, statusFromReports, statusText, type ParityStatus } from './parityModel';
import { LatestWinsScheduler } from './scheduler';
import { settings } from './settings';
import { linkFileUri, readLinks, readText } from './workspaceLinks';

interface Tracked {
  folder: vscode.WorkspaceFolder;
  link: ResolvedLink;
}

type Outcome = { ok: true; report: ParityReport } | { ok: false; message: string };

const keyOf = (l: ResolvedLink) => [l.base, l.adapter, l.merged ?? ''].join('\0');
const WATCHED_NAMES = new Set<string>([...CONFIG_FILE_NAMES, path.basename(LINK_FILE)]);

export class ParityOnSave implements vscode.Disposable {
  private readonly diagnostics = vscode.languages.createDiagnosticCollection('loraLens.parity');
  private readonly status = vscode.window.createStatusBarItem('loraLens.parity', vscode.StatusBarAlignment.Left, 50);
  private readonly scheduler: LatestWinsScheduler<string, Outcome>;
  private readonly tracked = new Map<string, Tracked>();
  private readonly outcomes = new Map<string, Outcome>();
  private readonly subs: vscode.Disposable[] = [];
  private watchers: vscode.Disposable[] = [];
  private reloading: Promise<void> = Promise.resolve();

  constructor(private readonly jobs: JobRunner) {
    this.status.name = 'LoRA parity';
    this.status.command = 'loraLens.showOutput';
    this.scheduler = new LatestWinsScheduler<string, Outcome>(
      (key, signal) => this.check(key, signal),
      (key, outcome) => this.apply(key, outcome),
      (key, e) => this.apply(key, { ok: false, message: userMessage(e) }),
      500,
    );
    this.subs.push(
      vscode.workspace.onDidSaveTextDocument((d) => void this.onSaved(d.uri)),
      vscode.workspace.onDidGrantWorkspaceTrust(() => void this.reload(true)),
      vscode.workspace.onDidChangeWorkspaceFolders(() => void this.reload(true)),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('loraLens.parityOnSave')) void this.reload(true);
      }),
    );
    for (const f of vscode.workspace.workspaceFolders ?? []) this.watchLinkFile(f);
    // Check every link once at startup, in the background, so the status bar shows ✓/✗ before the first save.
    void this.reload(true);
  }

  private get active(): boolean {
    return vscode.workspace.isTrusted && settings().parityOnSave;
  }

  private watchLinkFile(folder: vscode.WorkspaceFolder): void {
    const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(folder, LINK_FILE));
    // Written by a merge or by hand outside the editor: start watching the new links and check the ones never checked.
    const onChange = () => void this.reload(true);
    w.onDidCreate(onChange);
    w.onDidChange(onChange);
    w.onDidDelete(onChange);
    this.subs.push(w);
  }

  /**
   * Re-read every folder's links, rebuild the watchers; with `checkNew`, check links without a result yet.
   * Reloads run one after another: two interleaved ones would each rebuild the watchers from a half-read state.
   */
  private reload(checkNew: boolean): Promise<void> {
    this.reloading = this.reloading.then(() => this.reloadNow(checkNew)).catch((e: unknown) => logError('Reading lora-lens.json', e));
    return this.reloading;
  }

  private async reloadNow(checkNew: boolean): Promise<void> {
    for (const w of this.watchers) w.dispose();
    this.watchers = [];
    const before = new Set(this.tracked.keys());
    this.tracked.clear();
    if (!this.active) {
      this.render();
      return;
    }
    for (const folder of vscode.workspace.workspaceFolders ?? []) {
      const { links, problems } = await readLinks(folder);
      for (const p of problems) output().warn(`${linkFileUri(folder).fsPath}: ${p}`);
      for (const link of links) {
        const key = keyOf(link);
        this.tracked.set(key, { folder, link });
        for (const p of [link.base, link.adapter, link.merged]) if (p) this.watchPath(p);
      }
    }
    // Links that disappeared take their diagnostics with them.
    for (const k of before) if (!this.tracked.has(k)) this.outcomes.delete(k);
    if (checkNew) for (const k of this.tracked.keys()) if (!this.outcomes.has(k)) this.scheduler.trigger(k);
    this.render();
  }

  private watchPath(p: string): void {
    // A file, or a folder (PEFT adapter, sharded base): watch it and everything below.
    const on = (u: vscode.Uri) => this.onDiskChange(u);
    for (const glob of [path.basename(p), `${path.basename(p)}/**`]) {
      const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(path.dirname(p), glob));
      w.onDidChange(on);
      w.onDidCreate(on);
      w.onDidDelete(on);
      this.watchers.push(w);
    }
  }

  private onDiskChange(uri: vscode.Uri): void {
    if (!this.active) return;
    for (const t of this.affected(uri)) this.scheduler.trigger(keyOf(t.link));
  }

  private async onSaved(uri: vscode.Uri): Promise<void> {
    if (!this.active || uri.scheme !== 'file' || !WATCHED_NAMES.has(path.basename(uri.fsPath))) return;
    if (path.basename(uri.fsPath) === path.basename(LINK_FILE)) {
      await this.reload(false);
      for (const k of this.tracked.keys()) this.scheduler.trigger(k);
      return;
    }
    for (const t of this.affected(uri)) this.scheduler.trigger(keyOf(t.link));
  }

  private affected(uri: vscode.Uri): Tracked[] {
    const out: Tracked[] = [];
    for (const folder of vscode.workspace.workspaceFolders ?? []) {
      const mine = [...this.tracked.values()].filter((t) => t.folder === folder);
      const hit = affectedLinks(mine.map((t) => t.link), uri.fsPath, linkFileUri(folder).fsPath);
      for (const l of hit) out.push(this.tracked.get(keyOf(l))!);
    }
    return out;
  }

  private async check(key: string, signal: AbortSignal): Promise<Outcome> {
    const t = this.tracked.get(key);
    if (!t) throw new Error('link removed');
    const cfg = settings(t.folder.uri);
    const cts = new vscode.CancellationTokenSource();
    signal.addEventListener('abort', () => cts.cancel());
    try {
      this.status.text = '$(sync~spin) LoRA parity';
      this.status.show();
      const report = await this.jobs.run(
        {
          kind: 'parity',
          options: {
            base: t.link.base, adapter: { path: t.link.adapter }, probes: cfg.probes, device: cfg.device,
            toleranceFactor: cfg.toleranceFactor, ...(t.link.merged ? { merged: t.link.merged } : {}),
          },
        },
        { cancel: cts.token },
      );
      output().info(`Parity on save: ${path.basename(t.link.adapter)} ${report.pass ? 'passes' : `fails for ${report.layers.filter((l) => !l.pass).length} layers`}`);
      return { ok: true, report };
    } catch (e) {
      logError(`Parity on save (${t.link.adapter})`, e);
      return { ok: false, message: userMessage(e) };
    } finally {
      cts.dispose();
    }
  }

  private apply(key: string, outcome: Outcome): void {
    this.outcomes.set(key, outcome);
    void this.renderDiagnostics().then(() => this.render());
  }

  /** Where a link's findings go: the adapter's config file if it has one, else lora-lens.json. */
  private async configFileOf(t: Tracked): Promise<vscode.Uri> {
    const dir = /\.(safetensors|bin|pt|pth)$/i.test(t.link.adapter) ? path.dirname(t.link.adapter) : t.link.adapter;
    for (const name of CONFIG_FILE_NAMES) {
      const u = vscode.Uri.file(path.join(dir, name));
      if ((await readText(u)) !== null) return u;
    }
    return linkFileUri(t.folder);
  }

  private async renderDiagnostics(): Promise<void> {
    const byFile = new Map<string, { uri: vscode.Uri; diags: vscode.Diagnostic[] }>();
    for (const [key, outcome] of this.outcomes) {
      const t = this.tracked.get(key);
      if (!t) continue;
      const failing = outcome.ok ? parityFindings(outcome.report) : [];
      if (outcome.ok && failing.length === 0) continue;
      const uri = outcome.ok ? await this.configFileOf(t) : linkFileUri(t.folder);
      const text = (await readText(uri)) ?? '';
      const where = findJsonKey(text, 'lora_alpha') ?? findJsonKey(text, 'adapter') ?? { line: 0, start: 0, end: 0 };
      const range = new vscode.Range(where.line, where.start, where.line, where.end);
      const entry = byFile.get(uri.toString()) ?? { uri, diags: [] };
      if (outcome.ok) {
        for (const f of failing) {
          const d = new vscode.Diagnostic(range, f.message, vscode.DiagnosticSeverity.Error);
          d.source = 'LoRA Lens';
          d.code = 'parity';
          entry.diags.push(d);
        }
      } else {
        const d = new vscode.Diagnostic(range, vscode.l10n.t('Parity check could not run: {0}', outcome.message), vscode.DiagnosticSeverity.Warning);
        d.source = 'LoRA Lens';
        entry.diags.push(d);
      }
      byFile.set(uri.toString(), entry);
    }
    this.diagnostics.clear();
    for (const { uri, diags } of byFile.values()) this.diagnostics.set(uri, diags);
  }

  private render(): void {
    const outcomes = [...this.outcomes.entries()].filter(([k]) => this.tracked.has(k)).map(([, o]) => o);
    if (outcomes.length === 0 || !this.active) {
      this.status.hide();
      if (!this.active) this.diagnostics.clear();
      return;
    }
    const errors = outcomes.filter((o): o is { ok: false; message: string } => !o.ok);
    let s: ParityStatus = statusFromReports(outcomes.filter((o): o is { ok: true; report: ParityReport } => o.ok).map((o) => o.report));
    if (s.state === 'pass' && errors.length > 0) s = { state: 'error', message: errors[0]!.message };
    this.status.text = statusText(s);
    this.status.tooltip =
      s.state === 'pass'
        ? vscode.l10n.t('Merged checkpoints match base + adapter for all linked adapters.')
        : s.state === 'fail'
          ? vscode.l10n.t('Parity fails for {0} layers; see the Problems panel.', s.layers)
          : s.message;
    this.status.show();
  }

  dispose(): void {
    this.scheduler.dispose();
    for (const w of this.watchers) w.dispose();
    for (const s of this.subs) s.dispose();
    this.diagnostics.dispose();
    this.status.dispose();
  }
}
