/**
 * `lora-lens` — the command-line twin of the extension. Exit status: 0 ok, 1 parity failed, 2 bad input,
 * 130 cancelled (Ctrl-C), 70 internal error (a bug: the only case that prints a stack, and only with LORA_LENS_DEBUG=1).
 */
import { CancelSource } from '../core';
import { isLoraLensError } from '../core';
import { cmdDiff, cmdInspect, cmdMerge, cmdParity, cmdUnmerge, type Io } from './commands';
import { VERSION } from '../core';

const USAGE = `lora-lens ${VERSION} — inspect, merge, unmerge, diff and parity-check LoRA adapters

Usage:
  lora-lens inspect <adapter> [--base <b>] [--config <json>] [--alpha N] [--enable-lora 1,0,1] [--fan-in-fan-out] [--json]
  lora-lens merge   --base <b> --adapter <a>[:weight] [--adapter ...] --out <o> [--dtype keep|f16|bf16|f32] [--device auto|cpu|webgpu|cuda] [--json]
  lora-lens unmerge --merged <m> --adapter <a> --out <o> [--base <original>] [--json]
  lora-lens parity  --base <b> --adapter <a> [--merged <m>] [--probes 64] [--seed N] [--json]
  lora-lens diff    <adapterA> <adapterB> [--base <b>] [--json]

'lora-lens <command> --help' shows every option. Exit status: 0 ok, 1 parity failed, 2 bad input, 130 cancelled.
`;

const commands: Record<string, (argv: string[], io: Io) => Promise<number>> = {
  inspect: cmdInspect,
  merge: cmdMerge,
  unmerge: cmdUnmerge,
  parity: cmdParity,
  diff: cmdDiff,
};

export async function main(argv: string[]): Promise<number> {
  const cancel = new CancelSource();
  let interrupted = 0;
  const onSigint = () => {
    // First Ctrl-C cancels cleanly (outputs removed); a second one exits at once.
    if (++interrupted > 1) process.exit(130);
    cancel.cancel();
    process.stderr.write('\ncancelling… (Ctrl-C again to exit now)\n');
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  const io: Io = { out: (s) => process.stdout.write(s + '\n'), cancel, stderrIsTTY: Boolean(process.stderr.isTTY) };
  const [cmd, ...rest] = argv;
  try {
    if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
      io.out(USAGE);
      return cmd ? 0 : 2;
    }
    if (cmd === '--version' || cmd === '-V') return io.out(VERSION), 0;
    const run = commands[cmd];
    if (!run) {
      process.stderr.write(`lora-lens: unknown command '${cmd}'\n\n${USAGE}`);
      return 2;
    }
    return await run(rest, io);
  } catch (e) {
    if (isLoraLensError(e)) {
      process.stderr.write(`lora-lens: ${e.message}${e.code && e.kind !== 'cancelled' ? ` [${e.code}]` : ''}\n`);
      return e.kind === 'cancelled' ? 130 : 2;
    }
    process.stderr.write(`lora-lens: internal error: ${(e as Error)?.message ?? String(e)}\n`);
    if (process.env.LORA_LENS_DEBUG) process.stderr.write(`${(e as Error)?.stack}\n`);
    return 70;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}

// `lora-lens inspect … | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

// Flush stdout before exiting: a piped `--json` must never be cut short.
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  setImmediate(() => process.exit(code));
});
