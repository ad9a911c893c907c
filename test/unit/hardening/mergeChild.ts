/**
 * Child process for crash.test.ts: runs one real merge() and reports on stdout. Prints "progress" once the first
 * progress event arrives (so the parent can act mid-merge), then "done" or "error <kind>/<code> <message>".
 *   node --import tsx test/unit/hardening/mergeChild.ts <base> <adapter> <out> [--handle-xfsz]
 */
import { writeSync } from 'node:fs';
import { merge } from '../../../src/core/engine/merge';
import { isLoraLensError } from '../../../src/core/errors';

const [base, adapter, out] = process.argv.slice(2);
// Under `ulimit -f`, the kernel sends SIGXFSZ on an oversized write; with the signal handled the write fails EFBIG.
if (process.argv.includes('--handle-xfsz')) process.on('SIGXFSZ', () => undefined);
let told = false;
merge({
  base: base!,
  adapters: [{ path: adapter! }],
  out: out!,
  device: 'cpu',
  onProgress: () => {
    if (!told) {
      told = true;
      writeSync(1, 'progress\n');
    }
  },
}).then(
  () => {
    writeSync(1, 'done\n');
  },
  (e: unknown) => {
    writeSync(1, isLoraLensError(e) ? `error ${e.kind}/${e.code} ${e.message}\n` : `untyped ${String((e as Error)?.stack ?? e)}\n`);
    process.exitCode = 2;
  },
);
