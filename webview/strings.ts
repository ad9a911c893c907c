/** UI strings: the host localizes them (vscode.l10n) and sends them with `init`; English is the fallback. */
import type { Strings } from '../src/protocol/messages';

let table: Strings = {};

export function setStrings(s: Strings): void {
  table = s;
}

export function t(english: string): string {
  return table[english] ?? english;
}
