/** Turns the core's ProgressEvents into withProgress increments (VS Code's API adds increments up to 100). */
import type { ProgressEvent } from '../core';

/** 0..1, from bytes when known (tensor sizes vary by 1000×), else tensors; null when neither is known. */
export function progressFraction(e: ProgressEvent): number | null {
  if (e.bytesTotal > 0) return Math.min(1, Math.max(0, e.bytesDone / e.bytesTotal));
  if (e.tensorsTotal > 0) return Math.min(1, Math.max(0, e.tensorsDone / e.tensorsTotal));
  return null;
}

export function progressMessage(e: ProgressEvent): string {
  const parts = [e.phase];
  if (e.tensorsTotal > 0) parts.push(`${e.tensorsDone}/${e.tensorsTotal}`);
  if (e.etaSeconds !== null && Number.isFinite(e.etaSeconds) && e.etaSeconds > 1) parts.push(`~${Math.ceil(e.etaSeconds)} s left`);
  return parts.join(' · ');
}

/** Remembers what was reported so each call yields only the new percentage; never goes backwards. */
export class IncrementTracker {
  private reported = 0;

  next(e: ProgressEvent): { increment: number; message: string } {
    const f = progressFraction(e);
    let increment = 0;
    if (f !== null) {
      const pct = f * 100;
      if (pct > this.reported) {
        increment = pct - this.reported;
        this.reported = pct;
      }
    }
    return { increment, message: progressMessage(e) };
  }
}
