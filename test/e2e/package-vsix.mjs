#!/usr/bin/env node
// Packages a platform-specific VSIX, offline: the production bundles plus onnxruntime-node's runtime for that
// platform only (its other platforms' binaries are ~250 MB). Targets with no ORT binary get no node_modules at all
// and run on the plain-TypeScript backend.
//
// usage: node test/e2e/package-vsix.mjs [--target linux-x64] [--out file.vsix] [--no-build]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const argv = process.argv.slice(2);
const opt = (n) => { const i = argv.indexOf(n); return i >= 0 ? argv[i + 1] : undefined; };

// vsce target -> onnxruntime-node's bin/napi-v6/<platform>/<arch> folder (1.30 ships these four + darwin/arm64).
const ORT_FOLDERS = {
  'linux-x64': 'linux/x64', 'linux-arm64': 'linux/arm64', 'win32-x64': 'win32/x64', 'win32-arm64': 'win32/arm64', 'darwin-arm64': 'darwin/arm64',
};

export function packageVsix({ target = `${process.platform}-${process.arch}`, out, build = true } = {}) {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  out = path.resolve(out ?? path.join(repoRoot, `${pkg.name}-${target}-${pkg.version}.vsix`));
  if (build) {
    console.log('[package] node esbuild.mjs --production');
    const b = spawnSync(process.execPath, ['esbuild.mjs', '--production'], { cwd: repoRoot, stdio: 'inherit' });
    if (b.status !== 0) throw new Error('build failed');
  }
  // One ignore file per target: the committed .vscodeignore names linux/x64's runtime.
  const ort = ORT_FOLDERS[target];
  const base = fs.readFileSync(path.join(repoRoot, '.vscodeignore'), 'utf8');
  const ignoreText = ort
    ? base.replaceAll('napi-v6/linux/x64/', `napi-v6/${ort}/`)
    : base.split('\n').filter((l) => !l.startsWith('!node_modules/')).join('\n');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lora-lens-vsix-'));
  const ignoreFile = path.join(tmp, '.vscodeignore');
  fs.writeFileSync(ignoreFile, ignoreText);
  const vsce = path.join(repoRoot, 'node_modules', '@vscode', 'vsce', 'vsce');
  const args = [vsce, 'package', '--target', target, '--out', out, '--ignoreFile', ignoreFile,
    // npm dependency detection finds onnxruntime-node; the ignore file prunes it to one platform.
    '--dependencies',
    // No marketplace metadata in this repo yet: don't prompt (there is no TTY in CI).
    '--allow-missing-repository', '--no-rewrite-relative-links',
    ...(fs.existsSync(path.join(repoRoot, 'LICENSE')) || fs.existsSync(path.join(repoRoot, 'LICENSE.md')) ? [] : ['--skip-license'])];
  console.log(`[package] vsce package --target ${target}`);
  const r = spawnSync(process.execPath, args, {
    cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, npm_config_offline: 'true', npm_config_update_notifier: 'false' },
  });
  fs.rmSync(tmp, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`vsce package failed (exit ${r.status})`);
  const size = fs.statSync(out).size;
  const listing = spawnSync('unzip', ['-l', out], { encoding: 'utf8' });
  const files = listing.status === 0 ? listing.stdout.split('\n').map((l) => l.trim().split(/\s+/).slice(3).join(' ')).filter((f) => f.startsWith('extension/')) : [];
  if (files.length) {
    const must = ['extension/package.json', 'extension/dist/extension.js'];
    if (ort) must.push(`extension/node_modules/onnxruntime-node/bin/napi-v6/${ort}/onnxruntime_binding.node`);
    const missing = must.filter((m) => !files.includes(m));
    const leaked = files.filter((f) => /^extension\/(src|test|webview|\.ci)\//.test(f) || /\.map$/.test(f) || (ort && /napi-v6\//.test(f) && !f.includes(`napi-v6/${ort}/`)));
    if (missing.length) throw new Error(`VSIX lacks ${missing.join(', ')}`);
    if (leaked.length) throw new Error(`VSIX contains files it should not: ${leaked.slice(0, 10).join(', ')}`);
  }
  console.log(`[package] ${path.relative(process.cwd(), out)}: ${(size / 2 ** 20).toFixed(1)} MiB, ${files.length || '?'} files`);
  return { out, size, files };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    packageVsix({ target: opt('--target'), out: opt('--out'), build: !argv.includes('--no-build') });
  } catch (e) {
    console.error(`[package] ${e.message}`);
    process.exit(1);
  }
}
