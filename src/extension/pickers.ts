/** File pickers that remember the last choice per workspace (workspaceState), keyed by purpose. */
import * as vscode from 'vscode';
import * as path from 'node:path';

export type PickPurpose = 'adapter' | 'base' | 'merged' | 'out' | 'unmergeOut' | 'compare';

const CHECKPOINT_FILTERS = { [vscode.l10n.t('Checkpoints')]: ['safetensors', 'bin', 'pt', 'pth', 'json'], [vscode.l10n.t('All files')]: ['*'] };

export class Pickers {
  constructor(private readonly state: vscode.Memento) {}

  private last(purpose: PickPurpose): vscode.Uri | undefined {
    const s = this.state.get<string>(`loraLens.last.${purpose}`);
    return s ? vscode.Uri.parse(s) : undefined;
  }

  remember(purpose: PickPurpose, uri: vscode.Uri): void {
    void this.state.update(`loraLens.last.${purpose}`, uri.toString());
  }

  /** A file, or (adapters, sharded bases) a folder. */
  async open(purpose: PickPurpose, title: string, opts: { folders?: boolean } = {}): Promise<vscode.Uri | undefined> {
    const last = this.last(purpose);
    const picked = await vscode.window.showOpenDialog({
      title,
      openLabel: vscode.l10n.t('Select'),
      canSelectFiles: true,
      canSelectFolders: opts.folders ?? false,
      canSelectMany: false,
      ...(last ? { defaultUri: last } : vscode.workspace.workspaceFolders?.[0] ? { defaultUri: vscode.workspace.workspaceFolders[0].uri } : {}),
      filters: CHECKPOINT_FILTERS,
    });
    const uri = picked?.[0];
    if (uri) this.remember(purpose, uri);
    return uri;
  }

  async save(purpose: PickPurpose, title: string, suggested: vscode.Uri): Promise<vscode.Uri | undefined> {
    const last = this.last(purpose);
    // Suggest the remembered folder with the new file name: outputs usually go to one place.
    const defaultUri = last ? vscode.Uri.joinPath(last, '..', path.basename(suggested.fsPath)) : suggested;
    const uri = await vscode.window.showSaveDialog({
      title,
      saveLabel: vscode.l10n.t('Choose'),
      defaultUri,
      filters: { safetensors: ['safetensors'] },
    });
    if (uri) this.remember(purpose, uri);
    return uri;
  }
}
