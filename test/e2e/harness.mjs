// Drives LoRA Lens in a real VS Code: code-server (VS Code's workbench + Node extension host) in Debian's Chromium,
// through playwright-core. Everything runs isolated in a temp dir and is torn down even when a step fails.
// See docs in test/e2e/README.md.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, CODE_SERVER_VERSION, ensureCodeServer } from './installCodeServer.mjs';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const resultsDir = path.resolve(process.env.LORA_LENS_E2E_RESULTS || path.join(repoRoot, 'test-results', 'e2e'));
const EXTENSION_ID = 'lora-lens.lora-lens';

const t0 = Date.now();
export function log(msg) {
  console.log(`[e2e +${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${msg}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns a truthy value; throws `what` with the last error after timeoutMs. */
export async function waitFor(what, fn, { timeoutMs = 15000, intervalMs = 150 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${lastErr.message.split('\n')[0]})` : ''}`);
    }
    await sleep(intervalMs);
  }
}

export function freePort(preferred, host = '127.0.0.1') {
  const tryPort = (port) => new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, host, () => { const p = srv.address().port; srv.close(() => resolve(p)); });
  });
  return (async () => (preferred ? await tryPort(preferred) : undefined) ?? (await tryPort(0)))();
}

function extensionVersion() {
  return JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version;
}

/** Builds dist/ with the project's own build script (esbuild, ~1 s). */
export function buildExtension() {
  log('building extension: node esbuild.mjs');
  const r = spawnSync(process.execPath, ['esbuild.mjs'], { cwd: repoRoot, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`node esbuild.mjs failed:\n${r.stdout}\n${r.stderr}`);
  if (!fs.existsSync(path.join(repoRoot, 'dist', 'extension.js'))) throw new Error('node esbuild.mjs did not produce dist/extension.js');
}

/**
 * Installs the extension for one run: a folder named publisher.name-version with a copy of what was just built
 * (package.json, dist/) and links back to the repo for the rest (media/, node_modules/ for the native
 * onnxruntime-node addon). With `vsix`, installs a packaged .vsix with code-server's CLI instead.
 */
export function installExtension({ extensionsDir, userDataDir, env, codeServerBin, vsix }) {
  fs.mkdirSync(extensionsDir, { recursive: true });
  if (vsix) {
    log(`installing ${vsix}`);
    const r = spawnSync(process.execPath, [codeServerBin, '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir, '--install-extension', vsix], { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`--install-extension failed:\n${r.stdout}\n${r.stderr}`);
    return;
  }
  const dir = path.join(extensionsDir, `${EXTENSION_ID}-${extensionVersion()}`);
  fs.rmSync(dir, { recursive: true, force: true }); // copies and links: rm does not follow links into the repo
  fs.mkdirSync(dir);
  // The code (package.json, dist/) is copied, not linked: Node loads modules by their real path, and VS Code maps a
  // caller to its extension by that path; through a link the API calls land on "Null Extension Description" (the
  // source shown on every notification, the prefix of every status bar id). The rest stays linked (node_modules).
  const copied = new Set(['package.json', 'package.nls.json', 'dist']);
  for (const entry of ['package.json', 'package.nls.json', 'dist', 'media', 'node_modules', 'README.md', 'LICENSE', 'CHANGELOG.md']) {
    const src = path.join(repoRoot, entry);
    if (!fs.existsSync(src)) continue;
    if (copied.has(entry)) fs.cpSync(src, path.join(dir, entry), { recursive: true });
    else fs.symlinkSync(src, path.join(dir, entry));
  }
}

const USER_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoUpdate': false,
  'extensions.autoCheckUpdates': false,
  'extensions.ignoreRecommendations': true,
  // showOpenDialog/showSaveDialog become a quick input whose path box can be typed into.
  'files.simpleDialog.enable': true,
  'security.workspace.trust.enabled': false,
  'git.enabled': false,
  'chat.disableAIFeatures': true,
  'window.restoreWindows': 'none',
  'workbench.editor.restoreViewState': false,
  'files.hotExit': 'off',
  'editor.formatOnSave': false,
  'files.autoSave': 'off',
  'notifications.experimental.donotDisturb': false,
};

/**
 * Starts an isolated code-server with the extension installed.
 * `workspaceTrust: true` leaves Workspace Trust on (no --disable-workspace-trust); pair it with extraSettings that
 * enable trust, since the default profile turns it off.
 * Returns { url, port, proc, dirs, env, stop() }.
 */
export async function startCodeServer({ port, host = '127.0.0.1', vsix, extraSettings = {}, tmpRoot, logFile, workspaceTrust = false } = {}) {
  const { bin } = ensureCodeServer({ log });
  const root = tmpRoot ?? fs.mkdtempSync(path.join(os.tmpdir(), 'lora-lens-e2e-'));
  const dirs = {
    root,
    home: path.join(root, 'home'),
    userDataDir: path.join(root, 'user-data'),
    extensionsDir: path.join(root, 'extensions'),
  };
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
  const env = {
    ...process.env,
    HOME: dirs.home,
    XDG_CONFIG_HOME: path.join(dirs.home, '.config'),
    XDG_DATA_HOME: path.join(dirs.home, '.local', 'share'),
    XDG_CACHE_HOME: path.join(dirs.home, '.cache'),
    // A closed local port: nothing reaches out to a marketplace.
    EXTENSIONS_GALLERY: JSON.stringify({ serviceUrl: 'http://127.0.0.1:9/gallery', itemUrl: 'http://127.0.0.1:9/item' }),
    VSCODE_PROXY_URI: '',
  };
  delete env.ELECTRON_RUN_AS_NODE;
  delete env.VSCODE_IPC_HOOK_CLI;
  fs.mkdirSync(path.join(dirs.userDataDir, 'User'), { recursive: true });
  const settingsFile = path.join(dirs.userDataDir, 'User', 'settings.json');
  // A reused profile (npm run try) keeps the user's own settings.
  if (!fs.existsSync(settingsFile)) fs.writeFileSync(settingsFile, JSON.stringify({ ...USER_SETTINGS, ...extraSettings }, null, 2));
  installExtension({ extensionsDir: dirs.extensionsDir, userDataDir: dirs.userDataDir, env, codeServerBin: bin, vsix });

  const p = await freePort(port, host);
  logFile ??= path.join(resultsDir, 'code-server.log');
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const out = fs.openSync(logFile, 'w');
  const args = [
    bin, '--bind-addr', `${host}:${p}`, '--auth', 'none',
    '--user-data-dir', dirs.userDataDir, '--extensions-dir', dirs.extensionsDir,
    '--disable-telemetry', '--disable-update-check', '--disable-getting-started-override',
    '--ignore-last-opened',
  ];
  if (!workspaceTrust) args.push('--disable-workspace-trust');
  log(`starting code-server ${CODE_SERVER_VERSION} on ${host}:${p} (log: ${logFile})`);
  // detached: its own process group, so stop() can take the file watcher and extension host down with it.
  const proc = spawn(process.execPath, args, { env, detached: true, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  let exited = null;
  proc.on('exit', (code, signal) => { exited = { code, signal }; });
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${p}`;
  const stop = () => killGroup(proc);
  registerCleanup(stop);
  try {
    await waitFor('code-server /healthz', async () => {
      if (exited) throw new Error(`code-server exited early (${JSON.stringify(exited)}); see ${logFile}`);
      const res = await fetch(`${url}/healthz`).catch(() => null);
      return res?.ok;
    }, { timeoutMs: 30000, intervalMs: 200 });
  } catch (e) {
    stop();
    throw e;
  }
  log(`code-server ready at ${url}`);
  return { url, port: p, proc, dirs, env, stop, logFile };
}

function killGroup(proc) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  try { process.kill(-proc.pid, 'SIGTERM'); } catch { /* already gone */ }
  // The file watcher child can linger a few seconds; don't wait for it politely.
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    try { process.kill(-proc.pid, 0); } catch { return; }
    spawnSync('sleep', ['0.1']);
  }
  try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ }
}

const cleanups = new Set();
function registerCleanup(fn) {
  cleanups.add(fn);
}
export function runCleanups() {
  for (const fn of [...cleanups].reverse()) {
    cleanups.delete(fn);
    try { fn(); } catch (e) { console.error(`cleanup failed: ${e.message}`); }
  }
}
process.on('exit', runCleanups);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { runCleanups(); process.exit(130); });
}

/** Launches Debian's Chromium (headless) with a fresh profile. */
export async function launchBrowser({ headless = true } = {}) {
  const { chromium } = await import('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'lora-lens-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless,
    viewport: { width: 1600, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  const close = async () => { await context.close().catch(() => {}); fs.rmSync(profile, { recursive: true, force: true }); };
  return { context, close, profile };
}

/** A VS Code window in the browser, with helpers that act the way a person does. */
export class Workbench {
  constructor(page, server) {
    this.page = page;
    this.server = server;
    this.consoleLines = [];
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') this.consoleLines.push(`[${m.type()}] ${m.text()}`); });
    page.on('pageerror', (e) => this.consoleLines.push(`[pageerror] ${e.message}`));
  }

  /** Opens a folder and waits until the workbench and explorer are up (the extension host is up by then). */
  async ensureWorkspace(folder) {
    if (this.currentFolder !== folder) await this.openWorkspace(folder);
  }

  async openWorkspace(folder, { waitForFile } = {}) {
    log(`open workspace ${folder}`);
    this.currentFolder = folder;
    await this.page.goto(`${this.server.url}/?folder=${encodeURIComponent(folder)}`, { timeout: 30000 });
    await this.page.locator('.monaco-workbench').waitFor({ timeout: 30000 });
    const first = waitForFile ?? fs.readdirSync(folder).filter((f) => !f.startsWith('.')).sort()[0];
    if (first) {
      await this.page.locator(`.explorer-folders-view .monaco-list-row[aria-label^="${first}"]`).first()
        .waitFor({ timeout: 30000 }).catch(() => log(`  (explorer row ${first} not seen; continuing)`));
    }
    await this.dismissNotifications();
  }

  async quickInput() {
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: 5000 });
    return input;
  }

  async quickInputVisible() {
    return this.page.locator('.quick-input-widget .quick-input-box input').isVisible();
  }

  /** Runs a command from the palette by its full label, e.g. "LoRA Lens: Inspect Adapter…". */
  async runCommand(label, { attempts = 3 } = {}) {
    log(`command: ${label}`);
    for (let i = 1; i <= attempts; i++) {
      await this.focusWorkbench();
      await this.page.keyboard.press('F1');
      let input;
      try {
        input = await this.quickInput();
      } catch {
        log('  palette did not open; retrying');
        continue;
      }
      await input.fill(`>${label}`);
      // On a fresh profile the list can miss commands that registered late and never refreshes: reopen it.
      const row = this.page.locator('.quick-input-list .monaco-list-row').filter({ hasText: label }).first();
      try {
        await row.waitFor({ timeout: i === attempts ? 10000 : 4000 });
      } catch {
        log(`  "${label}" not listed (attempt ${i}); Escape and reopen`);
        await this.page.keyboard.press('Escape');
        await sleep(500);
        continue;
      }
      await row.click();
      return;
    }
    throw new Error(`command not found in palette: ${label}`);
  }

  /** Gives keyboard focus back to the workbench (out of any webview iframe). */
  async focusWorkbench() {
    const frameHasFocus = await this.page.evaluate(() => document.activeElement?.tagName === 'IFRAME').catch(() => false);
    if (frameHasFocus) await this.page.locator('.statusbar').click({ position: { x: 5, y: 5 } }).catch(() => {});
  }

  /** Quick Open (Ctrl+P) a workspace-relative path. */
  async openFile(relPath) {
    log(`open file ${relPath}`);
    await this.focusWorkbench();
    for (let attempt = 1; attempt <= 2; attempt++) {
      await this.page.keyboard.press('Control+P');
      const input = await this.quickInput();
      await input.fill(relPath);
      const base = path.basename(relPath);
      const row = this.page.locator('.quick-input-list .monaco-list-row').filter({ hasText: base }).first();
      try {
        await row.waitFor({ timeout: 8000 });
        // File search needs a moment to settle on the best match; the first row is the path we typed.
        await sleep(300);
        await this.page.keyboard.press('Enter');
        return;
      } catch {
        await this.page.keyboard.press('Escape');
      }
    }
    throw new Error(`quick open found no ${relPath}`);
  }

  /**
   * Answers a simple (typeable) file dialog or an input box: replaces the text with `text` and presses Enter.
   * Waits for the box to close (or change title) so the next step sees the next prompt.
   */
  async typeIntoQuickInput(text, { expectTitle, timeoutMs = 10000 } = {}) {
    const input = await waitFor('a quick input', async () => (await this.quickInputVisible()) && this.page.locator('.quick-input-widget .quick-input-box input'), { timeoutMs });
    const title = await this.quickInputTitle();
    if (expectTitle && !new RegExp(expectTitle, 'i').test(title)) throw new Error(`expected a prompt matching /${expectTitle}/, got "${title}"`);
    log(`  dialog "${title}" <- ${text}`);
    await input.fill(text);
    // The simple dialog re-filters after each keystroke; let it settle before accepting.
    await sleep(400);
    await this.page.keyboard.press('Enter');
    await waitFor('the prompt to be accepted', async () => {
      if (!(await this.quickInputVisible())) return true;
      const v = await input.inputValue().catch(() => '');
      return (await this.quickInputTitle()) !== title || v !== text;
    }, { timeoutMs });
    await sleep(200);
  }

  async quickInputTitle() {
    const t = this.page.locator('.quick-input-widget .quick-input-title');
    const title = (await t.isVisible().catch(() => false)) ? (await t.innerText()).trim() : '';
    const ph = await this.page.locator('.quick-input-widget .quick-input-box input').getAttribute('placeholder').catch(() => '') ?? '';
    return [title, ph].filter(Boolean).join(' | ');
  }

  /** Items of the open QuickPick (label texts). */
  async quickPickItems() {
    await this.quickInput();
    return this.page.locator('.quick-input-list .monaco-list-row').allInnerTexts();
  }

  /** Picks the QuickPick row whose text contains `label` (or the first row when label is omitted). */
  async pickQuickPickItem(label) {
    await this.quickInput();
    const rows = this.page.locator('.quick-input-list .monaco-list-row');
    const row = label ? rows.filter({ hasText: label }).first() : rows.first();
    await row.waitFor({ timeout: 10000 });
    log(`  pick "${(await row.innerText()).split('\n')[0]}"`);
    await row.click();
  }

  /** A notification toast containing `text` (string or RegExp). */
  async waitForNotification(text, { timeoutMs = 30000 } = {}) {
    const toast = this.page.locator('.notifications-toasts .notification-toast').filter({ hasText: text }).first();
    await toast.waitFor({ state: 'visible', timeout: timeoutMs });
    return toast;
  }

  async notificationTexts() {
    return this.page.locator('.notifications-toasts .notification-toast').allInnerTexts().catch(() => []);
  }

  /** Closes every visible toast (each has its own clear button; there is no default keybinding for "clear all"). */
  async dismissNotifications() {
    for (let i = 0; i < 10; i++) {
      const clear = this.page.locator('.notifications-toasts .notification-toast .codicon-notifications-clear');
      if ((await clear.count().catch(() => 0)) === 0) return;
      await this.page.locator('.notifications-toasts .notification-toast').first().hover({ timeout: 1000 }).catch(() => {});
      await clear.first().click({ timeout: 1000 }).catch(() => {});
    }
  }

  /** Opens the Problems panel and returns the text of each row (file rows and marker rows). */
  async problems() {
    const panel = this.page.locator('.markers-panel');
    if (!(await panel.isVisible().catch(() => false))) {
      await this.focusWorkbench();
      await this.page.keyboard.press('Control+Shift+M');
      await panel.waitFor({ timeout: 5000 }).catch(async () => { await this.runCommand('View: Focus Problems'); await panel.waitFor({ timeout: 5000 }); });
    }
    return panel.locator('.monaco-list-row').allInnerTexts();
  }

  /** Status bar entries: visible text plus aria-label (codicons render as glyphs, labels keep the words). */
  async statusBarItems() {
    return this.page.locator('.statusbar-item').evaluateAll((els) => els.map((e) => ({
      text: e.innerText.trim(),
      label: e.getAttribute('aria-label') ?? e.querySelector('[aria-label]')?.getAttribute('aria-label') ?? '',
      id: e.id,
      icons: [...e.querySelectorAll('.codicon')].map((i) => i.className).join(' '),
    })));
  }

  async statusBarItem(match) {
    const items = await this.statusBarItems();
    return items.find((i) => match.test(i.text) || match.test(i.label));
  }

  /**
   * The webview frame containing `selector`. Webviews sit two iframes deep and hidden ones stay in the DOM,
   * so visible ones win; among several visible, the last found (most recently opened) wins.
   */
  async webviewFrame(selector, { timeoutMs = 20000, hasText } = {}) {
    return waitFor(`a webview containing ${selector}${hasText ? ` with "${hasText}"` : ''}`, async () => {
      let found;
      for (const frame of this.page.frames()) {
        if (frame === this.page.mainFrame()) continue;
        let loc = frame.locator(selector);
        if (hasText) loc = loc.filter({ hasText });
        if ((await loc.count().catch(() => 0)) === 0) continue;
        if (!(await this.frameVisible(frame))) continue;
        found = frame;
      }
      return found;
    }, { timeoutMs, intervalMs: 250 });
  }

  async frameVisible(frame) {
    // Walk up to the webview's outer iframe in the workbench and ask whether it is displayed.
    let f = frame;
    while (f.parentFrame() && f.parentFrame() !== this.page.mainFrame()) f = f.parentFrame();
    const el = await f.frameElement().catch(() => null);
    if (!el) return false;
    return el.isVisible().catch(() => false);
  }

  async screenshot(name) {
    fs.mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `${name}.png`);
    await this.page.screenshot({ path: file, timeout: 10000 }).catch((e) => log(`  screenshot ${name} failed: ${e.message}`));
    log(`  screenshot ${path.relative(repoRoot, file)}`);
    return file;
  }

  /** The "LoRA Lens" output channel and extension host logs, for failure reports. */
  collectLogs() {
    const out = [];
    const logsRoot = path.join(this.server.dirs.userDataDir, 'logs');
    const walk = (d) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/LoRA Lens|lora-lens|exthost|remoteexthost/i.test(e.name)) out.push(p);
      }
    };
    if (fs.existsSync(logsRoot)) walk(logsRoot);
    return out;
  }

  saveLogs(dest = path.join(resultsDir, 'logs')) {
    fs.mkdirSync(dest, { recursive: true });
    for (const f of this.collectLogs()) {
      fs.copyFileSync(f, path.join(dest, f.replace(/[\\/]/g, '_').slice(-120)));
    }
    fs.writeFileSync(path.join(dest, 'browser-console.log'), this.consoleLines.join('\n') + '\n');
  }

  /** Text of the "LoRA Lens" output channel as written to disk by the extension host. */
  outputChannelText() {
    return this.collectLogs().filter((f) => /LoRA Lens/.test(path.basename(f))).map((f) => fs.readFileSync(f, 'utf8')).join('\n');
  }
}

/** Starts server + browser and returns { server, browser, wb, stop }. */
export async function startSession(opts = {}) {
  const server = await startCodeServer(opts);
  let browser;
  try {
    browser = await launchBrowser(opts);
  } catch (e) {
    server.stop();
    throw e;
  }
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.setDefaultTimeout(15000);
  const wb = new Workbench(page, server);
  const stop = async () => {
    try { wb.saveLogs(); } catch { /* best effort */ }
    await browser.context.close().catch(() => {});
    fs.rmSync(browser.profile, { recursive: true, force: true });
    server.stop();
    if (!opts.keepTmp) fs.rmSync(server.dirs.root, { recursive: true, force: true });
  };
  return { server, browser, wb, page, stop };
}
