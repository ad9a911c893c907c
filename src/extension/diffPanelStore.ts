/**
 * Which two adapters each diff panel compares, kept in workspaceState under a random panel id. The webview only
 * ever holds the id: after a reload the serializer trusts nothing from the webview but the id, and takes the paths
 * from here, so a tampered webview state cannot make the host read a file the user did not pick. vscode-free.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { validateDiffPanelState } from '../protocol/messages';

export const DIFF_PANELS_KEY = 'loraLens.diffPanels';
/** Older records are dropped first; a user rarely keeps more comparisons open across reloads. */
export const MAX_DIFF_PANELS = 20;

export interface DiffPanelRecord {
  /** Absolute paths of the adapters the user picked (file or PEFT folder). */
  a: string;
  b: string;
  labelA: string;
  labelB: string;
  /** ms since epoch; orders records for eviction. */
  at: number;
}

/** The part of vscode.Memento used here (so tests can pass a Map-backed fake). */
export interface StateStore {
  get<T>(key: string): T | undefined;
  update(key: string, value: unknown): Thenable<void> | Promise<void>;
}

export function newDiffPanelId(): string {
  return randomBytes(16).toString('hex');
}

function isRecord(v: unknown): v is DiffPanelRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r.a === 'string' && path.isAbsolute(r.a) && typeof r.b === 'string' && path.isAbsolute(r.b) &&
    typeof r.labelA === 'string' && typeof r.labelB === 'string' && typeof r.at === 'number'
  );
}

function readAll(store: StateStore): Record<string, DiffPanelRecord> {
  const raw = store.get<unknown>(DIFF_PANELS_KEY);
  const out: Record<string, DiffPanelRecord> = Object.create(null) as Record<string, DiffPanelRecord>;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return out;
  for (const [id, rec] of Object.entries(raw as Record<string, unknown>)) if (isRecord(rec)) out[id] = rec;
  return out;
}

export async function recordDiffPanel(store: StateStore, id: string, rec: Omit<DiffPanelRecord, 'at'>, now = Date.now()): Promise<void> {
  const all = readAll(store);
  all[id] = { a: rec.a, b: rec.b, labelA: rec.labelA, labelB: rec.labelB, at: now };
  const keep = Object.entries(all).sort((x, y) => y[1].at - x[1].at).slice(0, MAX_DIFF_PANELS);
  await store.update(DIFF_PANELS_KEY, Object.fromEntries(keep));
}

export async function forgetDiffPanel(store: StateStore, id: string): Promise<void> {
  const all = readAll(store);
  if (!(id in all)) return;
  delete all[id];
  await store.update(DIFF_PANELS_KEY, { ...all });
}

/**
 * The record for a webview state handed back by VS Code, or null when the state is malformed or names an id this
 * workspace never recorded (or has evicted).
 */
export function lookupDiffPanel(store: StateStore, webviewState: unknown): { id: string; record: DiffPanelRecord } | null {
  const s = validateDiffPanelState(webviewState);
  if (!s) return null;
  const record = readAll(store)[s.diffPanelId];
  return record ? { id: s.diffPanelId, record } : null;
}
