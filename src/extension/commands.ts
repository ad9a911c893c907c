/**
 * The LoRA Lens commands. Each works from the palette (pickers remember the last choice per workspace), from the
 * explorer/editor context (first argument = the clicked Uri) and from the inspector's buttons (the panel's Uri).
 */
import * as vscode from 'vscode';
import * as path from 'node:path';
import type { ParityReport } from '../core';
import { confirmPlan, pickDevice, pickDtype } from './confirm';
import type { DiffPanels } from './diffPanel';
import { distinctLabels } from './labels';
import { INSPECTOR_VIEW_TYPES, inspectorViewTypeFor, type InspectorProvider } from './inspector';
import type { JobRunner } from './jobs';
import { output, reportError } from './output';
import type { Pickers } from './pickers';
import { settings } from './settings';
import { linkedBase, linkedMerged, saveBaseLink, saveMergeLink } from './workspaceLinks';

export interface Services {
  context: vscode.ExtensionContext;
  jobs: JobRunner;
  pickers: Pickers;
  inspector: InspectorProvider;
  diffs: DiffPanels;
}

const t = vscode.l10n.t;
const CHECKPOINT_EXT = /\.(safetensors|bin|pt|pth)$/i;
/** PEFT's own file names, in the order PEFT itself prefers them. */
const PEFT_WEIGHTS = ['adapter_model.safetensors', 'adapter_model.bin'];

const asUri = (x: unknown): vscode.Uri | undefined => (x instanceof vscode.Uri ? x : undefined);

async function isDirectory(uri: vscode.Uri): Promise<boolean> {
  try {
    return ((await vscode.workspace.fs.stat(uri)).type & vscode.FileType.Directory) !== 0;
  } catch {
    return false;
  }
}

async function exists(uri: vscode.Uri): Promise<boolean> {
  try {
    await vscode.workspace.fs.stat(uri);
    return true;
  } catch {
    return false;
  }
}

/** The adapter the active inspector tab shows, if any. */
function activeInspectorUri(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  return input instanceof vscode.TabInputCustom && INSPECTOR_VIEW_TYPES.includes(input.viewType) ? input.uri : undefined;
}

const openInspector = (uri: vscode.Uri) => vscode.commands.executeCommand('vscode.openWith', uri, inspectorViewTypeFor(uri));

const label = (p: string) => path.basename(p.replace(/[\\/]+$/, '')) || p;

/** Where a base's merge goes by default: beside the base, "-merged" appended. */
function suggestedOut(base: vscode.Uri, suffix: string): vscode.Uri {
  const p = base.fsPath;
  const stem = path.basename(p).replace(/(\.index\.json|\.safetensors|\.bin|\.pt|\.pth)$/i, '');
  return vscode.Uri.file(path.join(path.dirname(p), `${stem}-${suffix}.safetensors`));
}

/** Sharded bases (a folder, or an index.json) merge into a folder. */
const isSharded = async (base: vscode.Uri) => base.fsPath.endsWith('.index.json') || (await isDirectory(base));

class Commands {
  constructor(private readonly s: Services) {}

  private async pickAdapter(arg: unknown): Promise<vscode.Uri | undefined> {
    return asUri(arg) ?? activeInspectorUri() ?? this.s.pickers.open('adapter', t('Select the LoRA adapter (file or PEFT folder)'), { folders: true });
  }

  private async pickBase(adapter: vscode.Uri, ask = false): Promise<vscode.Uri | undefined> {
    const linked = ask ? null : await linkedBase(adapter);
    if (linked) return vscode.Uri.file(linked);
    return this.s.pickers.open('base', t('Select the base model checkpoint for {0}', label(adapter.fsPath)), { folders: true });
  }

  async inspect(arg: unknown): Promise<void> {
    const target = asUri(arg) ?? (await this.s.pickers.open('adapter', t('Select a LoRA adapter or checkpoint'), { folders: true }));
    if (!target) return;
    let file = target;
    if (await isDirectory(target)) {
      const found = await this.findAdapterFile(target);
      if (!found) {
        void vscode.window.showErrorMessage(
          t('No LoRA adapter found in {0}: expected adapter_model.safetensors or adapter_model.bin (or a .safetensors/.bin/.pt checkpoint).', label(target.fsPath)),
        );
        return;
      }
      file = found;
    }
    await openInspector(file);
  }

  private async findAdapterFile(folder: vscode.Uri): Promise<vscode.Uri | undefined> {
    for (const name of PEFT_WEIGHTS) {
      const u = vscode.Uri.joinPath(folder, name);
      if (await exists(u)) return u;
    }
    const entries = await vscode.workspace.fs.readDirectory(folder);
    const candidates = entries.filter(([n, type]) => type === vscode.FileType.File && CHECKPOINT_EXT.test(n)).map(([n]) => n).sort();
    if (candidates.length === 0) return undefined;
    if (candidates.length === 1) return vscode.Uri.joinPath(folder, candidates[0]!);
    const pick = await vscode.window.showQuickPick(candidates, { title: t('Which checkpoint in {0}?', label(folder.fsPath)) });
    return pick ? vscode.Uri.joinPath(folder, pick) : undefined;
  }

  async linkBase(arg: unknown): Promise<void> {
    const adapter = await this.pickAdapter(arg);
    if (!adapter) return;
    const base = await this.pickBase(adapter, true);
    if (!base) return;
    try {
      const saved = await saveBaseLink(adapter, base);
      this.s.inspector.refresh(adapter);
      void vscode.window.showInformationMessage(
        saved
          ? t('Linked base {0} to {1} (saved in .vscode/lora-lens.json).', label(base.fsPath), label(adapter.fsPath))
          : t('Open a folder to keep links: .vscode/lora-lens.json needs a workspace folder.'),
      );
    } catch (e) {
      reportError(t('Link base model'), e);
    }
  }

  async merge(arg: unknown): Promise<void> {
    const adapter = await this.pickAdapter(arg);
    if (!adapter) return;
    const base = await this.pickBase(adapter);
    if (!base) return;
    const sharded = await isSharded(base);
    let out: vscode.Uri | undefined;
    if (sharded) {
      const dir = await vscode.window.showOpenDialog({ title: t('Folder for the merged shards'), canSelectFolders: true, canSelectFiles: false, openLabel: t('Merge into this folder') });
      out = dir?.[0];
    } else {
      out = await this.s.pickers.save('out', t('Save the merged checkpoint as'), suggestedOut(base, 'merged'));
    }
    if (!out) return;
    const cfg = settings(adapter);
    let dtype = cfg.defaultOutputDtype;
    let device = cfg.device;
    const overwrite = !sharded && (await exists(out));
    const go = await confirmPlan(t('Merge {0} into {1}', label(adapter.fsPath), label(base.fsPath)), 'Merge', () => [
      { label: t('Output'), value: out!.fsPath + (overwrite ? ` (${t('replaces the existing file')})` : '') },
      { label: t('Output dtype'), value: dtype, edit: async () => void (dtype = await pickDtype(dtype)) },
      { label: t('Device'), value: device, edit: async () => void (device = await pickDevice(device)) },
      { label: t('Adapter'), value: adapter.fsPath },
      { label: t('Base'), value: base.fsPath },
    ]);
    if (!go) return;
    const outPath = sharded ? out.fsPath + path.sep : out.fsPath;
    output().info(`Merge: base=${base.fsPath} adapter=${adapter.fsPath} out=${outPath} dtype=${dtype} device=${device}`);
    try {
      const r = await this.s.jobs.runWithProgress(t('Merging {0}', label(adapter.fsPath)), {
        kind: 'merge',
        options: { base: base.fsPath, adapters: [{ path: adapter.fsPath }], out: outPath, dtype, device, overwrite },
      });
      const log = output();
      log.info(`Merged ${r.tensorsMerged} tensors (${r.tensorsReplaced} replaced, ${r.tensorsCopied} copied) into ${r.outFiles.join(', ')} in ${r.seconds.toFixed(1)} s on ${r.device}`);
      for (const line of r.deviceReport) log.info(`  ${line}`);
      for (const w of r.warnings) log.warn(`  ${w.module ? `${w.module}: ` : ''}${w.message}`);
      const merged = vscode.Uri.file(r.outFiles.length === 1 ? r.outFiles[0]! : r.out);
      await saveMergeLink(adapter, base, merged).catch((e: unknown) => reportError(t('Recording the merge in lora-lens.json'), e));
      const open = t('Open merged checkpoint');
      const check = t('Run parity check');
      const pick = await vscode.window.showInformationMessage(
        t('Merged {0} tensors into {1}.', r.tensorsMerged, label(r.out)) + (r.warnings.length ? ' ' + t('{0} warnings (see the LoRA Lens output).', r.warnings.length) : ''),
        open, check,
      );
      if (pick === open) await openInspector(vscode.Uri.file(r.outFiles[0] ?? r.out));
      else if (pick === check) await this.parityRun(adapter, base, merged);
    } catch (e) {
      reportError(t('Merge'), e);
    }
  }

  async unmerge(arg: unknown): Promise<void> {
    const adapter = await this.pickAdapter(arg);
    if (!adapter) return;
    const linked = await linkedMerged(adapter);
    const merged = linked ? vscode.Uri.file(linked) : await this.s.pickers.open('merged', t('Select the merged checkpoint to unmerge {0} from', label(adapter.fsPath)), { folders: true });
    if (!merged) return;
    const out = await this.s.pickers.save('unmergeOut', t('Save the restored base as'), suggestedOut(merged, 'unmerged'));
    if (!out) return;
    const base = await linkedBase(adapter);
    let device = settings(adapter).device;
    const go = await confirmPlan(t('Unmerge {0} from {1}', label(adapter.fsPath), label(merged.fsPath)), 'Unmerge', () => [
      { label: t('Output'), value: out.fsPath },
      { label: t('Device'), value: device, edit: async () => void (device = await pickDevice(device)) },
      { label: t('Drift check against'), value: base ?? t('none (no linked base)') },
    ]);
    if (!go) return;
    try {
      const r = await this.s.jobs.runWithProgress(t('Unmerging {0}', label(adapter.fsPath)), {
        kind: 'unmerge',
        options: { merged: merged.fsPath, adapter: { path: adapter.fsPath }, out: out.fsPath, device, overwrite: true, ...(base ? { base } : {}) },
      });
      output().info(`Unmerged ${r.tensorsUnmerged} tensors into ${r.outFiles.join(', ')} in ${r.seconds.toFixed(1)} s on ${r.device}`);
      const worst = r.drift?.reduce((m, d) => Math.max(m, d.maxUlps), 0);
      if (r.drift) for (const d of r.drift) output().info(`  ${d.baseKey}: max ${d.maxUlps} ulp (${d.maxAbs.toExponential(2)} abs)`);
      const open = t('Open restored checkpoint');
      const pick = await vscode.window.showInformationMessage(
        t('Unmerged {0} tensors into {1}.', r.tensorsUnmerged, label(r.out)) + (worst !== undefined ? ' ' + t('Largest drift from the base: {0} ulp.', worst) : ''),
        open,
      );
      if (pick === open) await openInspector(vscode.Uri.file(r.outFiles[0] ?? r.out));
    } catch (e) {
      reportError(t('Unmerge'), e);
    }
  }

  async parity(arg: unknown): Promise<void> {
    const adapter = await this.pickAdapter(arg);
    if (!adapter) return;
    const base = await this.pickBase(adapter);
    if (!base) return;
    const linked = await linkedMerged(adapter);
    let merged: vscode.Uri | null | undefined = linked ? vscode.Uri.file(linked) : undefined;
    if (merged === undefined) {
      const choose = t('Check a merged checkpoint…');
      const own = t("Check LoRA Lens's own merge (in memory)");
      const p = await vscode.window.showQuickPick([choose, own], { title: t('What should be checked against base + adapter?') });
      if (!p) return;
      merged = p === own ? null : await this.s.pickers.open('merged', t('Select the merged checkpoint'), { folders: true });
      if (merged === undefined) return;
    }
    const cfg = settings(adapter);
    let device = cfg.device;
    const go = await confirmPlan(t('Parity check of {0}', label(adapter.fsPath)), 'Run parity check', () => [
      { label: t('Merged'), value: merged ? merged.fsPath : t('in-memory merge') },
      { label: t('Base'), value: base.fsPath },
      { label: t('Probes'), value: String(cfg.probes) },
      { label: t('Device'), value: device, edit: async () => void (device = await pickDevice(device)) },
    ]);
    if (!go) return;
    await this.parityRun(adapter, base, merged ?? null, device);
  }

  async parityRun(adapter: vscode.Uri, base: vscode.Uri, merged: vscode.Uri | null, device = settings(adapter).device): Promise<void> {
    const cfg = settings(adapter);
    try {
      const r = await this.s.jobs.runWithProgress(t('Parity check of {0}', label(adapter.fsPath)), {
        kind: 'parity',
        options: {
          base: base.fsPath, adapter: { path: adapter.fsPath }, probes: cfg.probes, device, toleranceFactor: cfg.toleranceFactor,
          ...(merged ? { merged: merged.fsPath } : {}),
        },
      });
      logParity(r);
      const show = t('Show parity report');
      const failing = r.layers.filter((l) => !l.pass);
      const pick = r.pass
        ? await vscode.window.showInformationMessage(t('Parity check passed: {0} layers within tolerance.', r.layers.length), show)
        : await vscode.window.showWarningMessage(
            t('Parity check failed for {0} of {1} layers: {2}', failing.length, r.layers.length, failing[0]?.diagnosis ?? failing[0]?.module ?? ''),
            show,
          );
      if (pick === show) output().show(true);
    } catch (e) {
      reportError(t('Parity check'), e);
    }
  }

  async compare(arg: unknown, other?: vscode.Uri): Promise<void> {
    const a = await this.pickAdapter(arg);
    if (!a) return;
    const b = other ?? (await this.s.pickers.open('compare', t('Compare {0} with…', label(a.fsPath)), { folders: true }));
    if (!b) return;
    try {
      const base = await linkedBase(a);
      const r = await this.s.jobs.runWithProgress(t('Comparing {0} with {1}', label(a.fsPath), label(b.fsPath)), {
        kind: 'diff',
        options: { a: { path: a.fsPath }, b: { path: b.fsPath }, ...(base ? { base } : {}) },
      });
      output().info(`Diff ${a.fsPath} ↔ ${b.fsPath}: ${r.summary.both} shared, ${r.summary.onlyA} only A, ${r.summary.onlyB} only B, mean cosine ${r.summary.meanCosine ?? '—'}`);
      const [labelA, labelB] = distinctLabels(a.fsPath, b.fsPath);
      this.s.diffs.show(r, a.fsPath, b.fsPath, labelA, labelB);
    } catch (e) {
      reportError(t('Compare'), e);
    }
  }

  private selected: vscode.Uri | undefined;

  async selectForCompare(arg: unknown): Promise<void> {
    const uri = asUri(arg) ?? activeInspectorUri();
    if (!uri) return;
    this.selected = uri;
    await vscode.commands.executeCommand('setContext', 'loraLens.hasSelectedForCompare', true);
    vscode.window.setStatusBarMessage(t('Selected {0} for compare', label(uri.fsPath)), 4000);
  }

  async compareWithSelected(arg: unknown): Promise<void> {
    const uri = asUri(arg) ?? activeInspectorUri();
    if (!this.selected) {
      void vscode.window.showErrorMessage(t('Select an adapter with "Select for Compare" first.'));
      return;
    }
    if (!uri) return;
    await this.compare(this.selected, uri);
  }
}

function logParity(r: ParityReport): void {
  const log = output();
  log.info(`Parity ${r.pass ? 'PASS' : 'FAIL'} (${r.probes} probes, seed ${r.seed}, ${r.device}, ${r.seconds.toFixed(1)} s)${r.mergedPath ? ` merged=${r.mergedPath}` : ''}`);
  for (const l of r.layers) {
    const s = `  ${l.pass ? '✓' : '✗'} ${l.module}: max |Δ| ${l.maxAbsDiff.toExponential(2)} (tol ${l.tolerance.toExponential(2)})`;
    if (l.pass) log.info(s);
    else log.error(`${s} — ${l.diagnosis ?? 'outside tolerance'}`);
  }
}

export const COMMAND_IDS = [
  'loraLens.inspect', 'loraLens.merge', 'loraLens.unmerge', 'loraLens.parity', 'loraLens.compare', 'loraLens.linkBase',
  'loraLens.selectForCompare', 'loraLens.compareWithSelected',
] as const;

export function registerCommands(s: Services): vscode.Disposable {
  const c = new Commands(s);
  const wrap = (name: string, fn: (arg: unknown) => Promise<void>) => async (arg: unknown) => {
    try {
      await fn(arg);
    } catch (e) {
      reportError(name, e);
    }
  };
  return vscode.Disposable.from(
    vscode.commands.registerCommand('loraLens.inspect', wrap('Inspect', (a) => c.inspect(a))),
    vscode.commands.registerCommand('loraLens.merge', wrap('Merge', (a) => c.merge(a))),
    vscode.commands.registerCommand('loraLens.unmerge', wrap('Unmerge', (a) => c.unmerge(a))),
    vscode.commands.registerCommand('loraLens.parity', wrap('Parity check', (a) => c.parity(a))),
    vscode.commands.registerCommand('loraLens.compare', wrap('Compare', (a) => c.compare(a))),
    vscode.commands.registerCommand('loraLens.linkBase', wrap('Link base model', (a) => c.linkBase(a))),
    vscode.commands.registerCommand('loraLens.selectForCompare', wrap('Select for compare', (a) => c.selectForCompare(a))),
    vscode.commands.registerCommand('loraLens.compareWithSelected', wrap('Compare with selected', (a) => c.compareWithSelected(a))),
    vscode.commands.registerCommand('loraLens.showOutput', () => output().show(true)),
  );
}
