/**
 * worker_threads entry (bundled to dist/worker.js): runs ONE engine job off the extension host thread.
 * Host → worker: start, cancel. Worker → host: progress (throttled), result, error. Core only; no vscode.
 */
import { parentPort } from 'node:worker_threads';
import { CancelSource, type ProgressEvent } from '../core';
import { isLoraLensError } from '../core';
import { inspect } from '../core';
import { merge } from '../core';
import { unmerge } from '../core';
import { parity } from '../core';
import { diff } from '../core';
import type { FromWorker, Job, ToWorker, WorkerError } from '../protocol/worker';

/** Progress is posted at most this often: withProgress cannot show more, and each post is a structured clone. */
const PROGRESS_INTERVAL_MS = 100;

const port = parentPort;
if (!port) throw new Error('dist/worker.js must run as a worker thread');

const cancel = new CancelSource();
let started = false;
let lastProgress = 0;

const post = (m: FromWorker) => port.postMessage(m);

function onProgress(event: ProgressEvent): void {
  const now = Date.now();
  const done = event.tensorsTotal > 0 && event.tensorsDone >= event.tensorsTotal;
  if (!done && now - lastProgress < PROGRESS_INTERVAL_MS) return;
  lastProgress = now;
  post({ type: 'progress', event });
}

function toWorkerError(e: unknown): WorkerError {
  if (isLoraLensError(e)) return { message: e.message, code: e.code, kind: e.kind, file: e.file ?? null, stack: null };
  const err = e instanceof Error ? e : new Error(String(e));
  return { message: err.message, code: null, kind: null, file: null, stack: err.stack ?? null };
}

async function run(job: Job): Promise<unknown> {
  switch (job.kind) {
    case 'inspect':
      return inspect(job.path, { ...job.options, cancel });
    case 'merge':
      return merge({ ...job.options, cancel, onProgress });
    case 'unmerge':
      return unmerge({ ...job.options, cancel, onProgress });
    case 'parity':
      return parity({ ...job.options, cancel, onProgress });
    case 'diff':
      return diff({ ...job.options, cancel });
  }
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'cancel') {
    cancel.cancel();
    return;
  }
  if (m.type !== 'start' || started) return;
  started = true;
  run(m.job).then(
    (report) => post({ type: 'result', report }),
    (e: unknown) => post({ type: 'error', error: toWorkerError(e) }),
  );
});
