/**
 * Where a rewritten checkpoint goes: one file for a single base, a folder with the same shard names (and a rewritten
 * index) for a sharded one. Refuses any output path that is one of the inputs — the last line of "inputs are never
 * written" before the writer's own check.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve, sep } from 'node:path';
import type { Checkpoint } from '../checkpoint';
import { inputError } from '../errors';

export interface OutputLayout {
  /** What the report calls the output: the file, or the folder of a sharded set. */
  out: string;
  /** One output file per base file, same order as `base.files`. */
  files: string[];
  /** Sharded: the rewritten index (null for a single file). */
  indexPath: string | null;
  dir: string;
}

const endsWithSep = (p: string) => p.endsWith('/') || p.endsWith(sep);

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The real path of a file that may not exist yet (its folder may not either). */
export function realish(p: string): string {
  const abs = resolve(p);
  try {
    return realpathSync(abs);
  } catch {
    const parent = dirname(abs);
    return parent === abs ? abs : join(realish(parent), basename(abs));
  }
}

export function outputLayout(base: Checkpoint, out: string): OutputLayout {
  if (base.format === 'safetensors-sharded') {
    if (existsSync(out) && !isDir(out)) {
      throw inputError('OutputNotFolder', `the base is sharded, so the output must be a folder, and ${out} is a file`, out);
    }
    const dir = resolve(out);
    const indexName = base.path.endsWith('.json') ? basename(base.path) : 'model.safetensors.index.json';
    return { out: dir, dir, files: base.files.map((f) => join(dir, basename(f))), indexPath: join(dir, indexName) };
  }
  if (endsWithSep(out) || isDir(out)) {
    const dir = resolve(out);
    const src = basename(base.files[0] ?? base.path);
    const name = extname(src) === '.safetensors' ? src : `${src.slice(0, src.length - extname(src).length)}.safetensors`;
    const file = join(dir, name);
    return { out: file, dir, files: [file], indexPath: null };
  }
  const file = resolve(out);
  return { out: file, dir: dirname(file), files: [file], indexPath: null };
}

/** Refuses outputs that coincide with inputs, and existing outputs unless overwrite is set. */
export function checkOutputs(layout: OutputLayout, inputs: readonly string[], overwrite: boolean): void {
  const ins = new Set(inputs.map(realish));
  const outs = [...layout.files, ...(layout.indexPath ? [layout.indexPath] : [])];
  for (const o of outs) {
    if (ins.has(realish(o))) {
      throw inputError('OutputIsInput', `the output would overwrite an input file; choose another output path (inputs are never written)`, o);
    }
  }
  if (!overwrite) {
    for (const o of outs) {
      if (existsSync(o)) throw inputError('OutputExists', 'the output already exists; pass --force to replace it', o);
    }
  }
}
