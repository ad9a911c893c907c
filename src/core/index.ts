/**
 * The core's public surface: the CLI, the worker, the extension and the webview import from here only, so what the
 * shells may rely on is one short list and everything else stays free to change.
 */
export { inspect } from './inspect';
export { merge } from './engine/merge';
export { unmerge } from './engine/unmerge';
export { parity } from './engine/parity';
export { diff } from './engine/diff';
export { LoraLensError, isLoraLensError, inputError, ioError, cancelledError, type ErrorKind } from './errors';
export { CancelSource, neverCancelled, throwIfCancelled, type CancelToken, type ProgressEvent, type ProgressSink } from './cancel';
export { VERSION } from './version';
export type { Device, ComputeBackend } from './compute/backend';
export type * from './options';
export type * from './reports';
export type { AdapterFormat, AdapterWarning, LayerKind, Provenance, ReplacedTensor, ScalingRule } from './adapter/types';
export type { Dtype } from './dtype';
