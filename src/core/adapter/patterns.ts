/**
 * PEFT's rank_pattern / alpha_pattern lookup (PEFT ≥ 0.15, PR #2419): iterate pattern keys in dict order, the
 * first p with re.match(r"(.*\.)?(" + p + r")$", key) wins; otherwise the exact key is looked up; otherwise
 * the default. Patterns are Python regexes, translated to JS here.
 */

/** Python `re` syntax → JS RegExp source. Returns null when the pattern cannot be expressed (caller falls back to exact names). */
export function pythonRegexSource(p: string): { source: string; flags: string } | null {
  let flags = '';
  let s = p;
  // Global inline flags at the start, e.g. (?i).
  const lead = /^\(\?([aiLmsux]+)\)/.exec(s);
  if (lead) {
    if (/[Lu]/.test(lead[1]!) && lead[1]!.includes('L')) return null;
    if (lead[1]!.includes('i')) flags += 'i';
    if (lead[1]!.includes('s')) flags += 's';
    if (lead[1]!.includes('m')) flags += 'm';
    if (lead[1]!.includes('x')) return null;
    s = s.slice(lead[0].length);
  }
  s = s
    .replace(/\(\?P<([A-Za-z_]\w*)>/g, '(?<$1>')
    .replace(/\(\?P=([A-Za-z_]\w*)\)/g, '\\k<$1>')
    .replace(/\\A/g, '^')
    .replace(/\\Z/g, '$');
  return { source: s, flags };
}

const cache = new Map<string, RegExp | null>();

/** The compiled PEFT matcher for one pattern key, or null if it is not a valid regex in either dialect. */
export function peftPatternRegExp(p: string): RegExp | null {
  if (cache.has(p)) return cache.get(p)!;
  let re: RegExp | null = null;
  const t = pythonRegexSource(p);
  if (t) {
    try {
      // Same capture-group layout as PEFT's "(.*\.)?(" + p + ")$" so back-references in p keep their numbers.
      re = new RegExp(`^(.*\\.)?(${t.source})$`, t.flags);
    } catch {
      re = null;
    }
  }
  cache.set(p, re);
  return re;
}

export function peftPatternMatches(p: string, key: string): boolean {
  const re = peftPatternRegExp(p);
  return re ? re.test(key) : p === key;
}

export interface PatternHit<T> {
  value: T;
  /** The pattern key that decided, or null when the default was used. */
  pattern: string | null;
}

export function lookupPattern<T>(patterns: Record<string, T> | null | undefined, key: string, fallback: T): PatternHit<T> {
  if (patterns && typeof patterns === 'object') {
    for (const p of Object.keys(patterns)) {
      if (peftPatternMatches(p, key)) return { value: patterns[p]!, pattern: p };
    }
    if (Object.prototype.hasOwnProperty.call(patterns, key)) return { value: patterns[key]!, pattern: key };
  }
  return { value: fallback, pattern: null };
}

/** PEFT target_modules list semantics: exact name, or name ends with "." + item. */
export function matchesTargetItem(module: string, item: string): boolean {
  return module === item || module.endsWith(`.${item}`);
}
