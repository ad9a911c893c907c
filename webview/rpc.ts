/** Typed wrapper around acquireVsCodeApi (callable once per page). */
import { PROTOCOL_VERSION, validatePersistedState, type FromWebview, type PersistedState, type ToWebview } from '../src/protocol/messages';

interface VsCodeApi {
  postMessage(msg: unknown): void;
  getState(): unknown;
  setState(s: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const api = acquireVsCodeApi();

export function post(msg: FromWebview): void {
  api.postMessage(msg);
}

export function onMessage(handler: (msg: ToWebview) => void): void {
  window.addEventListener('message', (e: MessageEvent) => {
    const m = e.data as ToWebview | null;
    // Only the host posts here; still ignore anything without our shape or from another protocol version.
    if (!m || typeof m !== 'object' || typeof m.type !== 'string') return;
    if (m.type === 'init' && m.protocolVersion !== PROTOCOL_VERSION) return;
    handler(m);
  });
}

export function loadState(): PersistedState | null {
  return validatePersistedState(api.getState());
}

export function saveState(s: Omit<PersistedState, 'protocolVersion'>): void {
  api.setState({ protocolVersion: PROTOCOL_VERSION, ...s });
}

/** The diff panel keeps only the host's opaque id (never a path): the serializer restores the panel from it. */
export function saveDiffState(diffPanelId: string | null): void {
  api.setState(diffPanelId === null ? null : { protocolVersion: PROTOCOL_VERSION, diffPanelId });
}

export function ready(): void {
  post({ type: 'ready', protocolVersion: PROTOCOL_VERSION });
}
