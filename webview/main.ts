/**
 * Webview entry (bundled to dist/webview.js). Sends `ready`, then renders whatever the host sends. It never names
 * a file: buttons post actions about the document this panel shows.
 */
import './nonce';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { ToWebview } from '../src/protocol/messages';
import { clear, h } from './dom';
import { loadState, onMessage, post, ready, saveDiffState } from './rpc';
import { setStrings, t } from './strings';
import { renderDiff } from './views/diff';
import { InspectorView } from './views/inspector';

const root = document.getElementById('root')!;
const busy = h('div', { class: 'busy', role: 'status', hidden: true });
document.body.prepend(busy);
let inspector: InspectorView | null = null;

function showError(message: string): void {
  clear(root);
  root.setAttribute('aria-busy', 'false');
  const retry = h('vscode-button', { secondary: true });
  retry.textContent = t('Retry');
  retry.addEventListener('click', () => post({ type: 'refresh' }));
  root.append(h('section', { class: 'panel error', role: 'alert' }, h('p', { class: 'error-text' }, message), retry));
}

function handle(m: ToWebview): void {
  switch (m.type) {
    case 'init':
      setStrings(m.strings);
      if (m.view === 'inspector') {
        inspector = new InspectorView(root, loadState());
        inspector.show(m.report, m.baseLabel);
      } else {
        saveDiffState(m.diffPanelId);
        renderDiff(root, m.report, m.labelA, m.labelB);
      }
      break;
    case 'update':
      if (!inspector) inspector = new InspectorView(root, loadState());
      inspector.show(m.report, m.baseLabel);
      break;
    case 'busy':
      busy.hidden = m.message === null;
      busy.textContent = m.message ?? '';
      document.body.classList.toggle('is-busy', m.message !== null);
      break;
    case 'error':
      showError(m.message);
      break;
  }
}

onMessage(handle);
root.append(h('p', { class: 'muted loading' }, 'Loading…'));
ready();
