#!/usr/bin/env node
// Offline-safe install of code-server (VS Code's workbench + Node extension host) into a per-version cache.
// A plain `npm install code-server` fails here: its postinstall needs --unsafe-perm as root, native modules need
// system headers, and @vscode/ripgrep's postinstall downloads from GitHub (which rolls back the whole install).
// So it is installed in stages, using only the npm registry and Debian packages.
//
// usage: node test/e2e/installCodeServer.mjs [--version 4.100.3] [--dir DIR] [--force]
// export: ensureCodeServer({ version, dir, log }) -> { bin, dir, version }
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// 4.100.3 = VS Code 1.100.3: the newest release whose engines accept Node 20.
export const CODE_SERVER_VERSION = process.env.LORA_LENS_CODE_SERVER_VERSION || '4.100.3';
export const CHROMIUM = process.env.LORA_LENS_CHROMIUM || '/usr/bin/chromium';

const APT_PACKAGES = [
  'build-essential', 'python3', 'pkg-config', 'libkrb5-dev', 'libx11-dev', 'libxkbfile-dev', 'libsecret-1-dev',
  'ripgrep', 'chromium',
];
const MARKER = '.lora-lens-install-complete';

export function cacheRoot() {
  return process.env.LORA_LENS_CACHE || path.join(os.homedir(), '.cache', 'lora-lens');
}

export function codeServerDir(version = CODE_SERVER_VERSION) {
  return path.join(cacheRoot(), `code-server-${version}`);
}

export function codeServerBin(dir = codeServerDir()) {
  return path.join(dir, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
}

export function isInstalled(dir = codeServerDir()) {
  return fs.existsSync(path.join(dir, MARKER)) && fs.existsSync(codeServerBin(dir));
}

function run(cmd, args, opts = {}) {
  const { allowFail = false, log = console.log, ...spawnOpts } = opts;
  log(`[install] $ ${cmd} ${args.join(' ')}${spawnOpts.cwd ? `   (in ${spawnOpts.cwd})` : ''}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...spawnOpts });
  if (r.status !== 0 && !allowFail) {
    throw new Error(`${cmd} ${args.join(' ')} failed with exit code ${r.status}${r.error ? `: ${r.error.message}` : ''}`);
  }
  return r.status;
}

function isDpkgInstalled(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

export function missingAptPackages() {
  return APT_PACKAGES.filter((p) => !isDpkgInstalled(p));
}

export function ensureAptPrerequisites(log = console.log) {
  const missing = missingAptPackages();
  if (missing.length === 0) return;
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const apt = (args) => asRoot ? run('apt-get', args, { env, allowFail: true, log }) : run('sudo', ['apt-get', ...args], { env, allowFail: true, log });
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log(`[install] apt packages missing: ${missing.join(' ')}`);
  // Package lists are often empty on a fresh image: update first when none are cached.
  const listsEmpty = !fs.existsSync('/var/lib/apt/lists') || fs.readdirSync('/var/lib/apt/lists').filter((f) => f.endsWith('Packages') || f.endsWith('Packages.lz4')).length === 0;
  if (listsEmpty) apt(['update']);
  if (apt(['install', '-y', '--no-install-recommends', ...missing]) !== 0) {
    apt(['update']);
    if (apt(['install', '-y', '--no-install-recommends', ...missing]) !== 0) throw new Error(`apt-get install failed for: ${missing.join(' ')}`);
  }
}

function findBindingGypDirs(nodeModules) {
  // Same as `find node_modules -maxdepth 3 -name binding.gyp`: covers `pkg/binding.gyp` and `@scope/pkg/binding.gyp`.
  const out = [];
  const visit = (dir, depth, rel) => {
    let entries;
    try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      if (e.isFile() && e.name === 'binding.gyp' && rel) out.push(rel);
      if (e.isDirectory() && depth < 2) visit(path.join(dir, e.name), depth + 1, rel ? `${rel}/${e.name}` : e.name);
    }
  };
  visit(nodeModules, 0, '');
  return [...new Set(out)];
}

export function ensureCodeServer({ version = CODE_SERVER_VERSION, dir = codeServerDir(version), force = false, log = console.log } = {}) {
  if (!force && isInstalled(dir)) return { bin: codeServerBin(dir), dir, version };
  const t0 = Date.now();
  log(`[install] installing code-server ${version} into ${dir} (takes ~2-4 min, ~320 MB; cached afterwards)`);
  ensureAptPrerequisites(log);
  fs.rmSync(path.join(dir, MARKER), { force: true });
  fs.mkdirSync(dir, { recursive: true });
  // node-gyp must not download headers (nodejs.org is unreachable): use the local ones.
  const env = { ...process.env, npm_config_nodedir: process.env.npm_config_nodedir || '/usr', npm_config_fund: 'false', npm_config_audit: 'false' };
  const npm = (args, cwd, allowFail = false) => run('npm', args, { cwd, env, allowFail, log });

  if (!fs.existsSync(path.join(dir, 'package.json'))) {
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'lora-lens-code-server-cache', private: true }, null, 2));
  }
  npm(['install', `code-server@${version}`, '--ignore-scripts', '--no-audit', '--no-fund'], dir);
  if (npm(['rebuild', 'argon2', '--foreground-scripts'], dir, true) !== 0) log('[install] argon2 rebuild failed (only needed for --auth password)');

  const vscodeDir = path.join(dir, 'node_modules', 'code-server', 'lib', 'vscode');
  npm(['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], vscodeDir);
  const native = findBindingGypDirs(path.join(vscodeDir, 'node_modules')).filter((n) => !n.startsWith('@vscode/windows-'));
  log(`[install] rebuilding native modules: ${native.join(' ')}`);
  // node-pty's last post-install step (compile_commands) exits non-zero although pty.node is built: harmless.
  if (npm(['rebuild', ...native, '--foreground-scripts'], vscodeDir, true) !== 0) log('[install] WARN: rebuild returned non-zero (node-pty compile_commands step fails harmlessly)');

  // Replace what @vscode/ripgrep's postinstall would have downloaded with Debian's rg.
  const rgDir = path.join(vscodeDir, 'node_modules', '@vscode', 'ripgrep', 'bin');
  fs.mkdirSync(rgDir, { recursive: true });
  fs.copyFileSync('/usr/bin/rg', path.join(rgDir, 'rg'));
  fs.chmodSync(path.join(rgDir, 'rg'), 0o755);
  // Links code-server's own postinstall would have made.
  const relink = (target, linkPath) => { fs.rmSync(linkPath, { force: true, recursive: false }); fs.symlinkSync(target, linkPath); };
  relink('node_modules', path.join(vscodeDir, 'node_modules.asar'));
  relink('code-linux.sh', path.join(vscodeDir, 'bin', 'remote-cli', 'code-server'));
  relink('browser-linux.sh', path.join(vscodeDir, 'bin', 'helpers', 'browser.sh'));
  npm(['install', '--omit=dev', '--no-audit', '--no-fund'], path.join(vscodeDir, 'extensions'));

  // Sanity check before declaring the cache complete.
  const ptyBuilt = fs.existsSync(path.join(vscodeDir, 'node_modules', 'node-pty', 'build', 'Release', 'pty.node'));
  if (!ptyBuilt) log('[install] WARN: node-pty pty.node not built (terminals will not work; the extension does not need them)');
  if (!fs.existsSync(codeServerBin(dir))) throw new Error(`code-server entry point missing: ${codeServerBin(dir)}`);
  fs.writeFileSync(path.join(dir, MARKER), JSON.stringify({ version, installedAt: new Date().toISOString(), seconds: (Date.now() - t0) / 1000 }) + '\n');
  log(`[install] code-server ${version} ready in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return { bin: codeServerBin(dir), dir, version };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
  try {
    const version = opt('--version') || CODE_SERVER_VERSION;
    const r = ensureCodeServer({ version, dir: opt('--dir') || codeServerDir(version), force: args.includes('--force') });
    console.log(`[install] code-server: ${r.bin}`);
  } catch (e) {
    console.error(`[install] FAILED: ${e.message}`);
    process.exit(1);
  }
}
