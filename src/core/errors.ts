/**
 * Every failure LoRA Lens reports to a user is one of these: a stable `code` a test can assert on,
 * the `file` it concerns, and a one-sentence message. Shells (CLI, extension) print `message` and
 * never a stack trace; anything that is not a LoraLensError is a bug.
 */
export type ErrorKind =
  | 'format' // the file is malformed (safetensors rules, zip, pickle)
  | 'security' // the file asks for something we refuse to do (pickle globals)
  | 'unsupported' // well-formed but outside what we can do correctly (F8 base, aLoRA, DoRA unmerge)
  | 'input' // the user's arguments or configs do not fit together
  | 'io' // the file system failed or changed under us
  | 'cancelled';

export class LoraLensError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly file: string | undefined;
  readonly detail: string;

  constructor(kind: ErrorKind, code: string, detail: string, file?: string) {
    super(file ? `${file}: ${detail}` : detail);
    this.name = 'LoraLensError';
    this.kind = kind;
    this.code = code;
    this.file = file;
    this.detail = detail;
  }

  /** The same error, attributed to a file (readers throw before they know the user-facing path). */
  withFile(file: string): LoraLensError {
    if (this.file) return this;
    return new LoraLensError(this.kind, this.code, this.detail, file);
  }
}

export const formatError = (code: string, detail: string, file?: string) =>
  new LoraLensError('format', code, detail, file);
export const inputError = (code: string, detail: string, file?: string) =>
  new LoraLensError('input', code, detail, file);
export const unsupportedError = (code: string, detail: string, file?: string) =>
  new LoraLensError('unsupported', code, detail, file);
export const securityError = (code: string, detail: string, file?: string) =>
  new LoraLensError('security', code, detail, file);
export const ioError = (code: string, detail: string, file?: string) =>
  new LoraLensError('io', code, detail, file);
export const cancelledError = () => new LoraLensError('cancelled', 'Cancelled', 'cancelled by the user');

export function isLoraLensError(e: unknown): e is LoraLensError {
  return e instanceof LoraLensError;
}
