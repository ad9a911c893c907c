import { cancelledError } from './errors';

/** Cancellation is checked between tensors; core never depends on vscode's CancellationToken. */
export interface CancelToken {
  readonly cancelled: boolean;
}

export const neverCancelled: CancelToken = { cancelled: false };

export function throwIfCancelled(token: CancelToken | undefined): void {
  if (token?.cancelled) throw cancelledError();
}

export class CancelSource implements CancelToken {
  cancelled = false;
  cancel(): void {
    this.cancelled = true;
  }
}

/** Progress of long jobs; shells turn it into a bar, JSON lines or withProgress. */
export interface ProgressEvent {
  phase: string;
  bytesDone: number;
  bytesTotal: number;
  tensorsDone: number;
  tensorsTotal: number;
  etaSeconds: number | null;
  current?: string;
}

export type ProgressSink = (e: ProgressEvent) => void;
