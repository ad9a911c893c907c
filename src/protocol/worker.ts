/**
 * Messages between the extension host and `dist/worker.js` (a worker_threads Worker that runs one engine job).
 * Options travel without their callbacks (cancel token, progress sink): the worker re-creates those locally.
 */
import type { ProgressEvent } from '../core';
import type { DiffOptions, InspectOptions, MergeOptions, ParityOptions, UnmergeOptions } from '../core';
import type { DiffReport, InspectReport, MergeReport, ParityReport, UnmergeReport } from '../core';

type Plain<T> = Omit<T, 'cancel' | 'onProgress'>;

export type Job =
  | { kind: 'inspect'; path: string; options: Plain<InspectOptions> }
  | { kind: 'merge'; options: Plain<MergeOptions> }
  | { kind: 'unmerge'; options: Plain<UnmergeOptions> }
  | { kind: 'parity'; options: Plain<ParityOptions> }
  | { kind: 'diff'; options: Plain<DiffOptions> };

export type JobKind = Job['kind'];

export interface JobResultMap {
  inspect: InspectReport;
  merge: MergeReport;
  unmerge: UnmergeReport;
  parity: ParityReport;
  diff: DiffReport;
}

export type ToWorker = { type: 'start'; job: Job } | { type: 'cancel' };

/** Errors cross the thread boundary as plain data; `code`/`kind` are set for LoraLensErrors only. */
export interface WorkerError {
  message: string;
  code: string | null;
  kind: string | null;
  file: string | null;
  /** Internal errors only: goes to the output channel, never to a notification. */
  stack: string | null;
}

export type FromWorker =
  | { type: 'progress'; event: ProgressEvent }
  | { type: 'result'; report: unknown }
  | { type: 'error'; error: WorkerError };
