/** Progress for long jobs: a redrawn bar on a TTY, JSON lines with --json, nothing when stderr is piped. */
import type { ProgressEvent, ProgressSink } from '../core';
import { fmtBytes } from './table';

export function progressSink(mode: 'tty' | 'json' | 'none'): { sink: ProgressSink; done: () => void } {
  if (mode === 'none') return { sink: () => {}, done: () => {} };
  if (mode === 'json') {
    return {
      sink: (e) => process.stderr.write(JSON.stringify({ progress: e }) + '\n'),
      done: () => {},
    };
  }
  let drawn = false;
  const sink = (e: ProgressEvent) => {
    const frac = e.bytesTotal > 0 ? Math.min(1, e.bytesDone / e.bytesTotal) : e.tensorsTotal > 0 ? e.tensorsDone / e.tensorsTotal : 0;
    const width = 28;
    const fill = Math.round(frac * width);
    const eta = e.etaSeconds === null ? '' : ` ETA ${Math.max(0, Math.round(e.etaSeconds))}s`;
    const text = `${e.phase} [${'█'.repeat(fill)}${'░'.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}%  ${fmtBytes(e.bytesDone)}/${fmtBytes(e.bytesTotal)}  ${e.tensorsDone}/${e.tensorsTotal} tensors${eta}`;
    process.stderr.write(`\r${text.slice(0, (process.stderr.columns || 120) - 1)}\x1b[K`);
    drawn = true;
  };
  return { sink, done: () => drawn && process.stderr.write('\r\x1b[K') };
}
