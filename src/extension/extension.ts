/** Composition only: each feature registers itself and returns a Disposable. */
import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { DiffPanels } from './diffPanel';
import { registerInspector } from './inspector';
import { JobRunner } from './jobs';
import { output } from './output';
import { ParityOnSave } from './parityOnSave';
import { Pickers } from './pickers';

export function activate(context: vscode.ExtensionContext): void {
  const jobs = new JobRunner(vscode.Uri.joinPath(context.extensionUri, 'dist', 'worker.js').fsPath);
  const { provider, disposable } = registerInspector(context, jobs);
  const diffs = new DiffPanels(context, jobs);
  context.subscriptions.push(
    output(),
    jobs,
    disposable,
    diffs,
    registerCommands({ context, jobs, pickers: new Pickers(context.workspaceState), inspector: provider, diffs }),
    new ParityOnSave(jobs),
  );
  void vscode.commands.executeCommand('setContext', 'loraLens.hasSelectedForCompare', false);
}

export function deactivate(): void {}
