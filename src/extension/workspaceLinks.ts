/** Reads and writes `.vscode/lora-lens.json` of a workspace folder through workspace.fs. */
import * as vscode from 'vscode';
import { LINK_FILE, linkForAdapter, parseLinkFile, recordMerge, resolveLinks, setBaseLink, type ResolvedLink } from './links';

export function linkFileUri(folder: vscode.WorkspaceFolder): vscode.Uri {
  return vscode.Uri.joinPath(folder.uri, LINK_FILE);
}

export async function readText(uri: vscode.Uri): Promise<string | null> {
  try {
    return new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
  } catch {
    return null;
  }
}

export async function writeText(uri: vscode.Uri, text: string): Promise<void> {
  await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(text));
}

export async function readLinks(folder: vscode.WorkspaceFolder): Promise<{ links: ResolvedLink[]; problems: string[] }> {
  const text = await readText(linkFileUri(folder));
  if (text === null) return { links: [], problems: [] };
  const parsed = parseLinkFile(text);
  return { links: resolveLinks(folder.uri.fsPath, parsed.links), problems: parsed.problems };
}

/** The folder a file belongs to: its workspace folder, else the first one (links are per folder). */
export function folderFor(uri: vscode.Uri): vscode.WorkspaceFolder | undefined {
  return vscode.workspace.getWorkspaceFolder(uri) ?? vscode.workspace.workspaceFolders?.[0];
}

export async function linkedBase(adapter: vscode.Uri): Promise<string | null> {
  const folder = vscode.workspace.getWorkspaceFolder(adapter);
  if (!folder) return null;
  const { links } = await readLinks(folder);
  return linkForAdapter(links, adapter.fsPath)?.base ?? null;
}

export async function linkedMerged(adapter: vscode.Uri): Promise<string | null> {
  const folder = vscode.workspace.getWorkspaceFolder(adapter);
  if (!folder) return null;
  const { links } = await readLinks(folder);
  return linkForAdapter(links, adapter.fsPath)?.merged ?? null;
}

/** Returns false when there is no workspace folder to write to. */
export async function saveBaseLink(adapter: vscode.Uri, base: vscode.Uri): Promise<boolean> {
  const folder = folderFor(adapter);
  if (!folder) return false;
  const uri = linkFileUri(folder);
  await writeText(uri, setBaseLink(await readText(uri), folder.uri.fsPath, base.fsPath, adapter.fsPath));
  return true;
}

export async function saveMergeLink(adapter: vscode.Uri, base: vscode.Uri, merged: vscode.Uri): Promise<boolean> {
  const folder = folderFor(adapter);
  if (!folder) return false;
  const uri = linkFileUri(folder);
  await writeText(uri, recordMerge(await readText(uri), folder.uri.fsPath, base.fsPath, adapter.fsPath, merged.fsPath));
  return true;
}
