/**
 * Turns the unpickled top-level object into named tensors: a state_dict, or dicts nesting state_dicts
 * ({"state_dict": …}, {"model": …}), flattened with '.'-joined keys. Everything that is not a tensor is
 * kept as an "extra" so inspection can show what else the file holds.
 */
import { PyDict, PyList, PyOpaque, PySet, PyTuple, TorchTensor, pyTypeName, type PyValue } from './pyValues';

/** A value in the checkpoint that is not a tensor (an epoch counter, a config string, an optimizer list…). */
export interface TorchExtra {
  /** Dotted path, '' for the top-level object. */
  readonly name: string;
  /** Python type name. */
  readonly type: string;
  /** Short human-readable value. */
  readonly preview: string;
}

/** Dicts nest this deep at most; deeper is a crafted file (or a cycle through the memo). */
const MAX_DICT_DEPTH = 32;
const MAX_PREVIEW = 80;

export interface FlatStateDict {
  readonly tensors: Array<[string, TorchTensor]>;
  readonly extras: TorchExtra[];
}

export function flattenStateDict(root: PyValue, bareTensorName: string): FlatStateDict {
  const tensors: Array<[string, TorchTensor]> = [];
  const extras: TorchExtra[] = [];
  const seen = new Set<string>();
  const onPath = new Set<PyDict>();

  const visit = (v: PyValue, name: string, depth: number) => {
    if (v instanceof TorchTensor) {
      const n = name === '' ? bareTensorName : name;
      if (seen.has(n)) {
        extras.push({ name: n, type: pyTypeName(v), preview: 'duplicate name (ignored; the first tensor is used)' });
        return;
      }
      seen.add(n);
      tensors.push([n, v]);
      return;
    }
    if (v instanceof PyDict) {
      if (onPath.has(v) || depth >= MAX_DICT_DEPTH) {
        extras.push({ name, type: v.type, preview: onPath.has(v) ? 'contains itself' : 'nested too deep' });
        return;
      }
      onPath.add(v);
      v.keys.forEach((k, i) => {
        const key = keyText(k);
        const value = v.values[i] ?? null;
        if (key === undefined) {
          extras.push({ name: `${name}[${pyTypeName(k)} key]`, type: pyTypeName(value), preview: preview(value) });
          return;
        }
        visit(value, name === '' ? key : `${name}.${key}`, depth + 1);
      });
      onPath.delete(v);
      return;
    }
    extras.push({ name, type: pyTypeName(v), preview: preview(v) });
  };
  visit(root, '', 0);
  return { tensors, extras };
}

function keyText(k: PyValue): string | undefined {
  if (typeof k === 'string') return k;
  if (typeof k === 'number' && Number.isInteger(k)) return String(k);
  if (typeof k === 'bigint') return k.toString();
  return undefined;
}

function preview(v: PyValue): string {
  let s: string;
  if (v === null) s = 'None';
  else if (typeof v === 'boolean') s = v ? 'True' : 'False';
  else if (typeof v === 'number' || typeof v === 'bigint') s = String(v);
  else if (typeof v === 'string') s = JSON.stringify(v);
  else if (v instanceof Uint8Array) s = `<${v.length} bytes>`;
  else if (v instanceof PyList || v instanceof PyTuple || v instanceof PySet) s = `${pyTypeName(v)} of ${v.items.length}`;
  else if (v instanceof PyDict) s = `${v.type} of ${v.size}`;
  else if (v instanceof PyOpaque) s = `${v.typeName}: ${v.note}`;
  else s = pyTypeName(v);
  return s.length > MAX_PREVIEW ? `${s.slice(0, MAX_PREVIEW - 1)}…` : s;
}
