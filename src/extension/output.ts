/** The "LoRA Lens" output channel and the one-sentence error rule for notifications. */
import * as vscode from 'vscode';
import type { WorkerError } from '../protocol/worker';

let channel: vscode.LogOutputChannel | undefined;

export function output(): vscode.LogOutputChannel {
  channel ??= vscode.window.createOutputChannel('LoRA Lens', { log: true });
  return channel;
}

export class JobError extends Error {
  constructor(readonly info: WorkerError) {
    super(info.message);
    this.name = 'JobError';
  }
  get cancelled(): boolean {
    return this.info.kind === 'cancelled';
  }
}

export const isCancelled = (e: unknown) => e instanceof JobError && e.cancelled;

/** LoraLensErrors are shown as they are; anything else is a bug: a short sentence, the stack to the log. */
export function userMessage(e: unknown): string {
  if (e instanceof JobError) {
    if (e.info.code === null) return vscode.l10n.t('Internal error: {0} (details in the LoRA Lens output).', firstLine(e.info.message));
    return e.info.message;
  }
  if (e instanceof Error) return firstLine(e.message);
  return String(e);
}

const firstLine = (s: string) => s.split('\n')[0]!.trim();

export function logError(context: string, e: unknown): void {
  const log = output();
  if (e instanceof JobError) {
    log.error(`${context}: ${e.info.message}${e.info.code ? ` [${e.info.code}]` : ''}`);
    if (e.info.stack) log.error(e.info.stack);
  } else if (e instanceof Error) {
    log.error(`${context}: ${e.message}`);
    if (e.stack) log.debug(e.stack);
  } else {
    log.error(`${context}: ${String(e)}`);
  }
}

/** Notify once, in one sentence; cancellations are silent (the user asked for them). */
export function reportError(context: string, e: unknown): void {
  if (isCancelled(e)) {
    output().info(`${context}: cancelled`);
    return;
  }
  logError(context, e);
  void vscode.window.showErrorMessage(userMessage(e));
}
