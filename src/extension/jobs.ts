/**
 * Runs engine jobs in dist/worker.js (a worker_threads Worker), one worker per job, so the extension host never
 * does tensor math. Cancel = post `cancel` (the core stops between tensors and removes its temp output), then
 * terminate if the worker has not finished within a grace period.
 */
import * as vscode from 'vscode';
import { Worker } from 'node:worker_threads';
import type { ProgressEvent } from '../core';
import type { FromWorker, Job, JobResultMap } from '../protocol/worker';
import { IncrementTracker } from './progress';
import { JobError, output } from './output';

/** Long enough for the core to finish a tensor and clean up its temp file, short enough to feel responsive. */
const CANCEL_GRACE_MS = 5000;

export interface RunOptions {
  onProgress?: (e: ProgressEvent) => void;
  /** Already-cancelled or later-cancelled signal. */
  cancel?: { readonly isCancellationRequested: boolean; onCancellationRequested: vscode.Event<unknown> };
}

export class JobRunner implements vscode.Disposable {
  private readonly live = new Set<Worker>();

  constructor(private readonly workerPath: string) {}

  run<J extends Job>(job: J, o: RunOptions = {}): Promise<JobResultMap[J['kind']]> {
    return new Promise((resolve, reject) => {
      const cancelled = () => new JobError({ message: 'cancelled by the user', code: 'Cancelled', kind: 'cancelled', file: null, stack: null });
      if (o.cancel?.isCancellationRequested) {
        reject(cancelled());
        return;
      }
      const worker = new Worker(this.workerPath);
      this.live.add(worker);
      let done = false;
      let killTimer: ReturnType<typeof setTimeout> | undefined;
      const finish = () => {
        done = true;
        if (killTimer) clearTimeout(killTimer);
        sub?.dispose();
        this.live.delete(worker);
        void worker.terminate();
      };
      const sub = o.cancel?.onCancellationRequested(() => {
        if (done) return;
        worker.postMessage({ type: 'cancel' });
        killTimer = setTimeout(() => {
          if (done) return;
          output().warn(`${job.kind}: worker did not stop within ${CANCEL_GRACE_MS} ms; terminating it`);
          finish();
          reject(cancelled());
        }, CANCEL_GRACE_MS);
      });
      worker.on('message', (m: FromWorker) => {
        if (done) return;
        if (m.type === 'progress') o.onProgress?.(m.event);
        else if (m.type === 'result') {
          finish();
          resolve(m.report as JobResultMap[J['kind']]);
        } else if (m.type === 'error') {
          finish();
          reject(new JobError(m.error));
        }
      });
      worker.on('error', (e) => {
        if (done) return;
        finish();
        reject(new JobError({ message: e.message, code: null, kind: null, file: null, stack: e.stack ?? null }));
      });
      worker.on('exit', (code) => {
        if (done) return;
        finish();
        reject(new JobError({ message: `worker exited with code ${code}`, code: null, kind: null, file: null, stack: null }));
      });
      worker.postMessage({ type: 'start', job });
    });
  }

  /** withProgress (notification, cancellable) around a job; percentages come from the core's ProgressSink. */
  runWithProgress<J extends Job>(title: string, job: J): Promise<JobResultMap[J['kind']]> {
    return Promise.resolve(
      vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title, cancellable: true },
        (progress, token) => {
          const tracker = new IncrementTracker();
          return this.run(job, {
            cancel: token,
            onProgress: (e) => progress.report(tracker.next(e)),
          });
        },
      ),
    );
  }

  dispose(): void {
    for (const w of this.live) void w.terminate();
    this.live.clear();
  }
}
