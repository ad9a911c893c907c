/**
 * `.vscode/lora-lens.json`: which adapter belongs to which base (and merged output) in a workspace folder.
 * Pure functions over text and absolute paths; the vscode side only reads/writes the file and watches paths.
 */
import * as path from 'node:path';

export const LINK_FILE = '.vscode/lora-lens.json';
/** Saving one of these re-checks the links whose adapter it configures. */
export const CONFIG_FILE_NAMES = ['adapter_config.json', 'lora_config.json'] as const;

export interface Link {
  base: string;
  adapter: string;
  merged?: string;
}

export interface ParsedLinks {
  links: Link[];
  /** One sentence per problem (bad JSON, entry without base/adapter); valid entries are still returned. */
  problems: string[];
  /** The whole document, so edits keep fields we do not know. */
  raw: Record<string, unknown>;
}

export interface ResolvedLink {
  index: number;
  base: string;
  adapter: string;
  merged: string | null;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

export function parseLinkFile(text: string): ParsedLinks {
  if (text.trim() === '') return { links: [], problems: [], raw: {} };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return { links: [], problems: [`lora-lens.json is not valid JSON (${(e as Error).message}).`], raw: {} };
  }
  if (!isObject(doc)) return { links: [], problems: ['lora-lens.json must contain an object.'], raw: {} };
  const problems: string[] = [];
  const links: Link[] = [];
  const list = doc.links ?? [];
  if (!Array.isArray(list)) {
    problems.push('"links" must be an array.');
  } else {
    list.forEach((e, i) => {
      if (!isObject(e) || !nonEmpty(e.base) || !nonEmpty(e.adapter)) {
        problems.push(`links[${i}] needs "base" and "adapter" paths.`);
        return;
      }
      if (e.merged !== undefined && !nonEmpty(e.merged)) {
        problems.push(`links[${i}].merged must be a path.`);
        return;
      }
      links.push(e.merged === undefined ? { base: e.base, adapter: e.adapter } : { base: e.base, adapter: e.adapter, merged: e.merged });
    });
  }
  return { links, problems, raw: doc };
}

export function resolvePath(folder: string, p: string): string {
  return path.resolve(folder, p);
}

/** Relative to the folder with forward slashes when inside it (portable between machines), else absolute. */
export function toStoredPath(folder: string, abs: string): string {
  const rel = path.relative(folder, abs);
  if (rel === '') return '.';
  if (rel.startsWith('..') || path.isAbsolute(rel)) return abs;
  return rel.split(path.sep).join('/');
}

export function resolveLinks(folder: string, links: readonly Link[]): ResolvedLink[] {
  return links.map((l, index) => ({
    index,
    base: resolvePath(folder, l.base),
    adapter: resolvePath(folder, l.adapter),
    merged: l.merged === undefined ? null : resolvePath(folder, l.merged),
  }));
}

const same = (a: string, b: string) => path.resolve(a) === path.resolve(b);
/** `p` is `dir` itself or lies inside it. */
const within = (p: string, dir: string) => {
  const rel = path.relative(path.resolve(dir), path.resolve(p));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
};

/** The adapter's folder: itself when it is a folder (PEFT), its parent when it is a file (loralib/kohya). */
function adapterDir(adapter: string, isFile: (p: string) => boolean): string {
  return isFile(adapter) ? path.dirname(adapter) : adapter;
}

const defaultIsFile = (p: string) => /\.(safetensors|bin|pt|pth|ckpt)$/i.test(p);

/**
 * Links a change at `changed` invalidates: the link file itself → all; a linked checkpoint → its link; a config
 * file (adapter_config.json / lora_config.json) in the adapter's folder → its link.
 */
export function affectedLinks(
  links: readonly ResolvedLink[],
  changed: string,
  linkFilePath: string,
  isFile: (p: string) => boolean = defaultIsFile,
): ResolvedLink[] {
  if (same(changed, linkFilePath)) return [...links];
  const isConfig = (CONFIG_FILE_NAMES as readonly string[]).includes(path.basename(changed));
  return links.filter((l) => {
    if (same(changed, l.base) || same(changed, l.adapter) || (l.merged !== null && same(changed, l.merged))) return true;
    if (within(changed, l.base) && !isFile(l.base)) return true; // sharded base folder
    if (!isFile(l.adapter) && within(changed, l.adapter)) return true; // a file inside a PEFT folder
    return isConfig && same(path.dirname(changed), adapterDir(l.adapter, isFile));
  });
}

/** The link whose adapter is this file, or the folder that holds it (PEFT weights file opened directly). */
export function linkForAdapter(links: readonly ResolvedLink[], adapterPath: string): ResolvedLink | undefined {
  return (
    links.find((l) => same(l.adapter, adapterPath)) ??
    links.find((l) => same(l.adapter, path.dirname(adapterPath)))
  );
}

function withLinks(parsed: ParsedLinks, links: Link[]): string {
  return JSON.stringify({ ...parsed.raw, links }, null, 2) + '\n';
}

/** Sets the base of every link of this adapter, or adds one. Paths are stored relative to `folder`. */
export function setBaseLink(text: string | null, folder: string, absBase: string, absAdapter: string): string {
  const parsed = parseLinkFile(text ?? '');
  const base = toStoredPath(folder, absBase);
  const adapter = toStoredPath(folder, absAdapter);
  let found = false;
  const links = parsed.links.map((l) => {
    if (!same(resolvePath(folder, l.adapter), absAdapter)) return l;
    found = true;
    // A merged output made from another base no longer belongs to this pair.
    const keepMerged = l.merged !== undefined && same(resolvePath(folder, l.base), absBase);
    return keepMerged ? { ...l, base } : { base, adapter };
  });
  if (!found) links.push({ base, adapter });
  return withLinks(parsed, dedupe(links, folder));
}

/** Records a finished merge: the base+adapter link gets (or updates) its merged output. */
export function recordMerge(text: string | null, folder: string, absBase: string, absAdapter: string, absMerged: string): string {
  const parsed = parseLinkFile(text ?? '');
  const entry: Link = {
    base: toStoredPath(folder, absBase),
    adapter: toStoredPath(folder, absAdapter),
    merged: toStoredPath(folder, absMerged),
  };
  const r = (p: string) => resolvePath(folder, p);
  const links = [...parsed.links];
  // The same output path re-merged replaces its entry; otherwise a base+adapter link without output gains one.
  let i = links.findIndex((l) => l.merged !== undefined && same(r(l.merged), absMerged));
  if (i < 0) i = links.findIndex((l) => l.merged === undefined && same(r(l.adapter), absAdapter) && same(r(l.base), absBase));
  if (i >= 0) links[i] = entry;
  else links.push(entry);
  return withLinks(parsed, dedupe(links, folder));
}

function dedupe(links: Link[], folder: string): Link[] {
  const seen = new Set<string>();
  return links.filter((l) => {
    const k = [l.base, l.adapter, l.merged ?? ''].map((p) => (p ? resolvePath(folder, p) : '')).join('\0');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
