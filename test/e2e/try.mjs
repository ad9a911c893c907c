#!/usr/bin/env node
// `npm run try`: LoRA Lens in a real VS Code in your browser, on a sample workspace, with nothing to set up.
// Installs code-server into ~/.cache/lora-lens on first use (a few minutes, once), builds and installs the
// extension, writes the sample workspace and prints the URL. Runs until Ctrl-C.
//
// usage: node test/e2e/try.mjs [--fresh] [--no-build] [--vsix file.vsix]
// env:   PORT (default 8080; a free port when taken), HOST (default 127.0.0.1),
//        LORA_LENS_TRY_WORKSPACE (default ~/.cache/lora-lens/try-workspace)
import fs from 'node:fs';
import path from 'node:path';
import { buildExtension, log, startCodeServer } from './harness.mjs';
import { cacheRoot, ensureCodeServer } from './installCodeServer.mjs';
import { buildTryWorkspace } from './sampleWorkspace.mjs';

const argv = process.argv.slice(2);
const opt = (n) => { const i = argv.indexOf(n); return i >= 0 ? argv[i + 1] : undefined; };

ensureCodeServer({ log });
if (!argv.includes('--no-build') && !opt('--vsix')) buildExtension();

const workspace = path.resolve(process.env.LORA_LENS_TRY_WORKSPACE || path.join(cacheRoot(), 'try-workspace'));
if (argv.includes('--fresh')) fs.rmSync(workspace, { recursive: true, force: true });
if (!fs.existsSync(path.join(workspace, 'README.md'))) {
  buildTryWorkspace(workspace);
  log(`sample workspace written to ${workspace}`);
} else {
  log(`reusing ${workspace} (--fresh rebuilds it)`);
}

// The profile lives in the cache too, so settings and open editors survive restarts; the extension is relinked each time.
const profile = path.join(cacheRoot(), 'try-profile');
fs.rmSync(path.join(profile, 'extensions'), { recursive: true, force: true });
const server = await startCodeServer({
  port: Number(process.env.PORT || 8080),
  host: process.env.HOST,
  vsix: opt('--vsix'),
  tmpRoot: profile,
  logFile: path.join(cacheRoot(), 'try-code-server.log'),
});
const url = `${server.url}/?folder=${encodeURIComponent(workspace)}`;
console.log(`\n  LoRA Lens is running in VS Code (code-server) at:\n\n    ${url}\n\n  Workspace: ${workspace} (see its README.md)\n  Log: ${server.logFile}\n  Ctrl-C to stop.\n`);
server.proc.on('exit', (code, signal) => {
  console.error(`code-server exited (${signal ?? code}); see ${server.logFile}`);
  process.exit(1);
});
// Keep running until Ctrl-C; the harness's signal handlers stop code-server's whole process group.
setInterval(() => {}, 1 << 30);
