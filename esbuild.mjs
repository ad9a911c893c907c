// One build script, several bundles: extension host (node/cjs), CLI (node/cjs), worker (node/cjs), webview (browser/iife).
// Type-checking is separate (`npm run typecheck`); esbuild only strips types.
import * as esbuild from 'esbuild';
import { existsSync, mkdirSync, copyFileSync } from 'node:fs';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');
const common = { bundle: true, sourcemap: !production, minify: production, logLevel: 'info', legalComments: 'none' };
const node = { ...common, platform: 'node', format: 'cjs', target: 'node20', external: ['vscode', 'onnxruntime-node'] };

const entries = [
  { ...node, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js' },
  { ...node, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } },
  { ...node, entryPoints: ['src/worker/main.ts'], outfile: 'dist/worker.js' },
  {
    ...common, platform: 'browser', format: 'iife', target: 'chrome120',
    entryPoints: ['webview/main.ts'], outfile: 'dist/webview.js', metafile: true,
  },
].filter((e) => existsSync(e.entryPoints[0]));

mkdirSync('dist', { recursive: true });
for (const e of entries) {
  if (watch) {
    const ctx = await esbuild.context(e);
    await ctx.watch();
  } else {
    const r = await esbuild.build(e);
    if (e.metafile) {
      // The webview must never pull in node builtins or the vscode API.
      const bad = Object.keys(r.metafile.inputs).filter((i) => i.startsWith('node:') || i === 'vscode' || /src\/(extension|cli|worker)\//.test(i));
      if (bad.length) throw new Error(`webview bundle imports host-only modules: ${bad.join(', ')}`);
    }
  }
}
if (existsSync('webview/styles.css')) copyFileSync('webview/styles.css', 'dist/webview.css');
