/**
 * The one protocol between the extension host and its webviews (inspector and adapter diff).
 *
 * Test ids the E2E suite relies on (keep them exactly):
 *   inspector root [data-testid=inspector]; summary [data-testid=summary] (contains the format name);
 *   table rows [data-testid=layer-row] with cells [data-col=module|r|alpha|scaling|mask];
 *   filter [data-testid=filter]; heatmap [data-testid=heatmap]; spectrum [data-testid=spectrum];
 *   loralib editor [data-testid=alpha-input], [data-testid=mask-input] ("1,0,1"), [data-testid=save-config];
 *   actions [data-testid=action-link-base|action-merge|action-parity|action-compare];
 *   plain-checkpoint rows [data-testid=tensor-row];
 *   diff root [data-testid=diff], rows [data-testid=diff-row] with [data-col=cosine], heatmap [data-testid=cosine-heatmap].
 *   Host side: status bar text contains "LoRA parity"; output channel "LoRA Lens"; merge confirmation QuickPick whose
 *   first item label is "Merge".
 *
 * Security rule: a message from a webview can never name a file. Actions refer to the document the panel shows;
 * any other file is chosen through a VS Code picker on the host side. `validateFromWebview` enforces the shapes.
 *
 * This file imports nothing at runtime (type-only imports from core), so both bundles can include it.
 */
import type { DiffReport, InspectReport } from '../core';

/** Bumped whenever a message shape changes; state restored from an older webview is dropped. */
export const PROTOCOL_VERSION = 1;

export type ViewKind = 'inspector' | 'diff';

export const INSPECTOR_ACTIONS = ['linkBase', 'merge', 'parity', 'compare', 'unmerge'] as const;
export type InspectorAction = (typeof INSPECTOR_ACTIONS)[number];

/** Longest enable_lora mask accepted from the editor (real fused projections have 2–4 blocks). */
export const MAX_MASK_LENGTH = 64;
/** loralib alpha is a small positive number; anything beyond this is a typo, not a config. */
export const MAX_ALPHA = 1e6;
/** Upper bound of a serialized webview message; real ones are a few hundred bytes. */
export const MAX_MESSAGE_BYTES = 4096;

// ---------------------------------------------------------------- webview → host

/** First message of every webview: the host answers with `init`. */
export interface ReadyMessage {
  type: 'ready';
  protocolVersion: number;
}

/** A button in the inspector; the host picks any further file itself. */
export interface ActionMessage {
  type: 'action';
  action: InspectorAction;
}

/** loralib only: the values the files do not store, written to lora_config.json beside the checkpoint. */
export interface SaveLoralibConfigMessage {
  type: 'saveLoralibConfig';
  alpha: number | null;
  enableLora: boolean[] | null;
  fanInFanOut: boolean | null;
}

/** Re-read the document (e.g. after an error). */
export interface RefreshMessage {
  type: 'refresh';
}

export type FromWebview = ReadyMessage | ActionMessage | SaveLoralibConfigMessage | RefreshMessage;

// ---------------------------------------------------------------- host → webview

/** UI strings, localized on the host (webviews have no l10n API). */
export type Strings = Record<string, string>;

export interface InspectorInit {
  type: 'init';
  protocolVersion: number;
  view: 'inspector';
  report: InspectReport;
  /** Display name of the linked base model, if any. */
  baseLabel: string | null;
  /** The workspace is trusted (editing configs is allowed). */
  trusted: boolean;
  strings: Strings;
}

export interface DiffInit {
  type: 'init';
  protocolVersion: number;
  view: 'diff';
  report: DiffReport;
  labelA: string;
  labelB: string;
  /**
   * Opaque id the webview keeps in its state so the panel can come back after a reload. The host maps it to the
   * two adapters the user picked (workspaceState); the webview never holds or sends a path.
   */
  diffPanelId: string | null;
  strings: Strings;
}

/** The document changed (file on disk, config saved, base linked): new report, UI state kept. */
export interface UpdateMessage {
  type: 'update';
  report: InspectReport;
  baseLabel: string | null;
}

/** A long step is running (the inspector greys out and shows this line), or null when done. */
export interface BusyMessage {
  type: 'busy';
  message: string | null;
}

/** One sentence, shown in place of the view. */
export interface ErrorMessage {
  type: 'error';
  message: string;
}

export type ToWebview = InspectorInit | DiffInit | UpdateMessage | BusyMessage | ErrorMessage;

/** What the webview keeps in `vscode.setState`; dropped when the protocol version differs. */
export interface PersistedState {
  protocolVersion: number;
  filter: string;
  sortKey: string | null;
  sortDesc: boolean;
  selected: string | null;
  scrollTop: number;
}

/** What the diff webview keeps in `vscode.setState`; VS Code hands it to the panel serializer after a reload. */
export interface DiffPanelState {
  protocolVersion: number;
  diffPanelId: string;
}

/** 128 random bits as hex: see newDiffPanelId on the host. */
export const DIFF_PANEL_ID = /^[0-9a-f]{32}$/;

// ---------------------------------------------------------------- validation

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function hasOnlyKeys(o: Record<string, unknown>, keys: readonly string[]): boolean {
  return Object.keys(o).every((k) => keys.includes(k));
}

/** Serialized size, or Infinity when it cannot be serialized (cycles, BigInt). */
function jsonSize(v: unknown): number {
  try {
    return JSON.stringify(v)?.length ?? Infinity;
  } catch {
    return Infinity;
  }
}

/**
 * The only way a webview message enters the host. Returns null for anything that is not exactly one of the
 * known shapes: unknown types, extra fields (a forged `path`), wrong field types, oversized payloads.
 */
export function validateFromWebview(msg: unknown): FromWebview | null {
  if (!isObject(msg) || typeof msg.type !== 'string') return null;
  if (jsonSize(msg) > MAX_MESSAGE_BYTES) return null;
  switch (msg.type) {
    case 'ready':
      if (!hasOnlyKeys(msg, ['type', 'protocolVersion'])) return null;
      if (typeof msg.protocolVersion !== 'number' || !Number.isInteger(msg.protocolVersion)) return null;
      return { type: 'ready', protocolVersion: msg.protocolVersion };
    case 'action':
      if (!hasOnlyKeys(msg, ['type', 'action'])) return null;
      if (typeof msg.action !== 'string' || !(INSPECTOR_ACTIONS as readonly string[]).includes(msg.action)) return null;
      return { type: 'action', action: msg.action as InspectorAction };
    case 'refresh':
      if (!hasOnlyKeys(msg, ['type'])) return null;
      return { type: 'refresh' };
    case 'saveLoralibConfig': {
      if (!hasOnlyKeys(msg, ['type', 'alpha', 'enableLora', 'fanInFanOut'])) return null;
      const { alpha, enableLora, fanInFanOut } = msg;
      if (alpha !== null && !(typeof alpha === 'number' && Number.isFinite(alpha) && alpha > 0 && alpha <= MAX_ALPHA)) {
        return null;
      }
      if (enableLora !== null) {
        if (!Array.isArray(enableLora) || enableLora.length === 0 || enableLora.length > MAX_MASK_LENGTH) return null;
        if (!enableLora.every((b) => typeof b === 'boolean')) return null;
      }
      if (fanInFanOut !== null && typeof fanInFanOut !== 'boolean') return null;
      if (alpha === null && enableLora === null && fanInFanOut === null) return null;
      return {
        type: 'saveLoralibConfig',
        alpha: alpha as number | null,
        enableLora: enableLora === null ? null : [...(enableLora as boolean[])],
        fanInFanOut: fanInFanOut as boolean | null,
      };
    }
    default:
      return null;
  }
}

/** Restored webview state, or null when it is missing, malformed or from another protocol version. */
export function validatePersistedState(s: unknown): PersistedState | null {
  if (!isObject(s) || s.protocolVersion !== PROTOCOL_VERSION) return null;
  if (typeof s.filter !== 'string' || s.filter.length > 1000) return null;
  if (s.sortKey !== null && typeof s.sortKey !== 'string') return null;
  if (typeof s.sortDesc !== 'boolean') return null;
  if (s.selected !== null && typeof s.selected !== 'string') return null;
  if (typeof s.scrollTop !== 'number' || !Number.isFinite(s.scrollTop) || s.scrollTop < 0) return null;
  return {
    protocolVersion: PROTOCOL_VERSION,
    filter: s.filter,
    sortKey: s.sortKey as string | null,
    sortDesc: s.sortDesc,
    selected: s.selected as string | null,
    scrollTop: s.scrollTop,
  };
}

/** The diff panel id from a restored webview state, or null for anything else (extra fields, paths, bad id). */
export function validateDiffPanelState(s: unknown): DiffPanelState | null {
  if (!isObject(s) || s.protocolVersion !== PROTOCOL_VERSION) return null;
  if (!hasOnlyKeys(s, ['protocolVersion', 'diffPanelId'])) return null;
  if (typeof s.diffPanelId !== 'string' || !DIFF_PANEL_ID.test(s.diffPanelId)) return null;
  return { protocolVersion: PROTOCOL_VERSION, diffPanelId: s.diffPanelId };
}
