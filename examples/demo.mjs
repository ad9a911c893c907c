// `npm run demo`: every CLI command once, on the bundled examples (tiny GPT-2/Llama-shaped checkpoints whose
// merges were computed by PyTorch in the test oracles). Prints each command before running it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const out = mkdtempSync(join(tmpdir(), 'lora-lens-demo-'));
const steps = [
  ['inspect', 'examples/gpt2/adapter'],
  ['merge', '--base', 'examples/gpt2/base.safetensors', '--adapter', 'examples/gpt2/adapter', '--out', join(out, 'gpt2-merged.safetensors')],
  ['parity', '--base', 'examples/gpt2/base.safetensors', '--adapter', 'examples/gpt2/adapter', '--merged', join(out, 'gpt2-merged.safetensors')],
  ['merge', '--base', 'examples/llama/base.safetensors', '--adapter', 'examples/llama/adapter-q-v', '--out', join(out, 'llama-merged.safetensors')],
  ['unmerge', '--merged', join(out, 'llama-merged.safetensors'), '--adapter', 'examples/llama/adapter-q-v', '--out', join(out, 'llama-restored.safetensors'), '--base', 'examples/llama/base.safetensors'],
  ['inspect', 'examples/loralib/c_attn_lora.pt', '--alpha', '8', '--enable-lora', 'q,v', '--fan-in-fan-out', '--base', 'examples/loralib/base.safetensors'],
  ['diff', 'examples/llama/adapter-q-v', 'examples/llama/adapter-rslora'],
  // A deliberately wrong check: the base is not the merged model, and parity says so (exit 1 expected).
  ['parity', '--base', 'examples/gpt2/base.safetensors', '--adapter', 'examples/gpt2/adapter', '--merged', 'examples/gpt2/base.safetensors'],
];
let failed = false;
for (const [i, args] of steps.entries()) {
  process.stdout.write(`\n\x1b[1m$ lora-lens ${args.join(' ')}\x1b[0m\n`);
  const r = spawnSync(process.execPath, ['dist/cli.js', ...args], { stdio: 'inherit' });
  const expected = i === steps.length - 1 ? 1 : 0;
  if (r.status !== expected) {
    failed = true;
    process.stderr.write(`demo step exited ${r.status}, expected ${expected}\n`);
  }
}
rmSync(out, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
