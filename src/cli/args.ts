/**
 * A small, strict argv parser: unknown flags and missing values are errors (exit 2), never silently ignored,
 * because a mistyped `--alpah 16` on a merge would otherwise produce a wrong checkpoint.
 */
import { inputError } from '../core';

export interface FlagSpec {
  /** 'string' takes a value; 'bool' does not; 'list' takes a value and may repeat. */
  type: 'string' | 'bool' | 'list';
  help: string;
  placeholder?: string;
}

export interface Parsed {
  positional: string[];
  flags: Map<string, string[] | true>;
}

export function parseArgs(argv: readonly string[], spec: Readonly<Record<string, FlagSpec>>): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string[] | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const s = spec[name];
    if (!s) throw inputError('UnknownFlag', `unknown option --${name} (see --help)`);
    if (s.type === 'bool') {
      if (eq >= 0) throw inputError('BadFlag', `--${name} takes no value`);
      flags.set(name, true);
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      if (value === undefined || (value.startsWith('--') && value.length > 2)) {
        throw inputError('MissingValue', `--${name} needs a value (${s.placeholder ?? 'value'})`);
      }
      i++;
    }
    const prev = flags.get(name);
    if (s.type === 'string' && prev) throw inputError('RepeatedFlag', `--${name} given twice`);
    flags.set(name, [...(Array.isArray(prev) ? prev : []), value]);
  }
  return { positional, flags };
}

export const str = (p: Parsed, name: string): string | undefined => {
  const v = p.flags.get(name);
  return Array.isArray(v) ? v[0] : undefined;
};
export const list = (p: Parsed, name: string): string[] => {
  const v = p.flags.get(name);
  return Array.isArray(v) ? v : [];
};
export const bool = (p: Parsed, name: string): boolean => p.flags.get(name) === true;

export function num(p: Parsed, name: string, opts: { int?: boolean; min?: number } = {}): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || v.trim() === '' || (opts.int && !Number.isInteger(n)) || (opts.min !== undefined && n < opts.min)) {
    throw inputError('BadNumber', `--${name} must be ${opts.int ? 'an integer' : 'a number'}${opts.min !== undefined ? ` ≥ ${opts.min}` : ''}, got '${v}'`);
  }
  return n;
}

/** `1,0,1`, `true,false,true`, `q,v` (of q,k,v) → boolean mask. */
export function parseMask(text: string): boolean[] {
  const parts = text.split(',').map((s) => s.trim().toLowerCase());
  if (parts.every((p) => ['q', 'k', 'v'].includes(p))) return ['q', 'k', 'v'].map((n) => parts.includes(n));
  return parts.map((p) => {
    if (p === '1' || p === 'true' || p === 't') return true;
    if (p === '0' || p === 'false' || p === 'f') return false;
    throw inputError('BadMask', `--enable-lora must look like 1,0,1 or q,v — got '${text}'`);
  });
}

export function helpText(usage: string, spec: Readonly<Record<string, FlagSpec>>): string {
  const rows = Object.entries(spec).map(([n, s]) => {
    const left = `  --${n}${s.type === 'bool' ? '' : ` <${s.placeholder ?? 'value'}>`}`;
    return `${left.padEnd(34)} ${s.help}`;
  });
  return `${usage}\n\nOptions:\n${rows.join('\n')}\n`;
}

/** `path[:weight]` — the weight suffix is only taken when it parses as a number (Windows drive letters stay intact). */
export function parseAdapterArg(arg: string): { path: string; weight: number } {
  const m = /^(.*):(-?\d+(?:\.\d+)?(?:e-?\d+)?)$/i.exec(arg);
  if (m && m[1]) return { path: m[1], weight: Number(m[2]) };
  return { path: arg, weight: 1 };
}

