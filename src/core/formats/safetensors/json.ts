/**
 * A strict JSON parser for untrusted headers. JSON.parse cannot serve here: it keeps the last of
 * duplicate keys silently, rounds integers above 2^53, and cannot tell `2` from `2.0` or `-0`.
 * This one keeps numbers as their source text (small plain integers as numbers), keeps object keys in order, rejects duplicates,
 * rejects lone surrogate escapes and caps nesting at 128 (serde_json's recursion limit).
 */

export class JsonNumber {
  constructor(readonly raw: string) {}
}

export class JsonObject {
  readonly keys: string[] = [];
  readonly values: JsonValue[] = [];
  private index: Map<string, number> | null = null;

  /** Returns false when `key` is already present. */
  add(key: string, value: JsonValue): boolean {
    if (this.has(key)) return false;
    this.keys.push(key);
    this.values.push(value);
    if (this.index) this.index.set(key, this.keys.length - 1);
    return true;
  }

  has(key: string): boolean {
    return this.indexOf(key) >= 0;
  }

  get(key: string): JsonValue | undefined {
    const i = this.indexOf(key);
    return i >= 0 ? this.values[i] : undefined;
  }

  private indexOf(key: string): number {
    // Most objects here hold three keys: a linear scan beats hashing until they grow.
    if (!this.index) {
      if (this.keys.length < 16) return this.keys.indexOf(key);
      this.index = new Map(this.keys.map((k, i) => [k, i]));
    }
    return this.index.get(key) ?? -1;
  }
}

/** A JS number only ever stands for a plain non-negative integer below 10^15; other numbers stay JsonNumber text. */
export type JsonValue = string | number | boolean | null | JsonNumber | JsonObject | JsonValue[];

export class JsonError extends Error {
  constructor(message: string, readonly duplicateKey?: string) {
    super(message);
  }
}

const MAX_DEPTH = 128;

export function parseJson(text: string): JsonValue {
  return new Parser(text).parseDocument();
}

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly s: string) {}

  parseDocument(): JsonValue {
    this.ws();
    const v = this.value();
    this.ws();
    if (this.pos !== this.s.length) this.fail('trailing characters');
    return v;
  }

  private fail(what: string): never {
    throw new JsonError(`${what} at character ${this.pos}`);
  }

  private ws(): void {
    const s = this.s;
    let p = this.pos;
    for (;;) {
      const c = s.charCodeAt(p);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
      else break;
    }
    this.pos = p;
  }

  private value(): JsonValue {
    const c = this.s.charCodeAt(this.pos);
    switch (c) {
      case 0x7b: return this.object();
      case 0x5b: return this.array();
      case 0x22: return this.string();
      case 0x74: return this.literal('true', true);
      case 0x66: return this.literal('false', false);
      case 0x6e: return this.literal('null', null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
        return this.fail(Number.isNaN(c) ? 'EOF while parsing a value' : 'expected value');
    }
  }

  private literal<T extends JsonValue>(word: string, v: T): T {
    if (!this.s.startsWith(word, this.pos)) this.fail('expected value');
    this.pos += word.length;
    return v;
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) this.fail('recursion limit exceeded');
    this.pos++;
  }

  /** At `close`: consumes it and leaves the container (true). Skips whitespace either side. */
  private closes(close: number): boolean {
    this.ws();
    if (this.s.charCodeAt(this.pos) !== close) return false;
    this.pos++;
    this.depth--;
    return true;
  }

  /** After a member: a ',' (then more follows: false) or the closing bracket (true); anything else is an error. */
  private nextOrClose(close: number): boolean {
    if (this.closes(close)) return true;
    if (this.s.charCodeAt(this.pos) !== 0x2c) this.fail(`expected ',' or '${String.fromCharCode(close)}'`);
    this.pos++;
    this.ws();
    return false;
  }

  private object(): JsonObject {
    this.enter();
    const obj = new JsonObject();
    if (this.closes(0x7d)) return obj;
    for (;;) {
      if (this.s.charCodeAt(this.pos) !== 0x22) this.fail('key must be a string');
      const keyAt = this.pos;
      const key = this.string();
      this.ws();
      if (this.s.charCodeAt(this.pos) !== 0x3a) this.fail("expected ':'");
      this.pos++;
      this.ws();
      const v = this.value();
      if (!obj.add(key, v)) {
        throw new JsonError(`duplicate key ${JSON.stringify(key)} at character ${keyAt}`, key);
      }
      if (this.nextOrClose(0x7d)) return obj;
    }
  }

  private array(): JsonValue[] {
    this.enter();
    const out: JsonValue[] = [];
    if (this.closes(0x5d)) return out;
    for (;;) {
      out.push(this.value());
      if (this.nextOrClose(0x5d)) return out;
    }
  }

  /** Plain unsigned integers of up to 15 digits (exact doubles) come back as numbers; the rest as raw text. */
  private number(): JsonNumber | number {
    const s = this.s;
    const start = this.pos;
    let p = start;
    let c = s.charCodeAt(p);
    if (c >= 0x31 && c <= 0x39) {
      let v = 0;
      do {
        v = v * 10 + (c - 0x30);
        c = s.charCodeAt(++p);
      } while (c >= 0x30 && c <= 0x39);
      if (c !== 0x2e && c !== 0x65 && c !== 0x45 && p - start <= 15) {
        this.pos = p;
        return v;
      }
      p = start;
    }
    if (s.charCodeAt(p) === 0x2d) p++;
    if (s.charCodeAt(p) === 0x30) p++;
    else p = this.digits(p);
    if (s.charCodeAt(p) === 0x2e) p = this.digits(p + 1);
    const e = s.charCodeAt(p);
    if (e === 0x65 || e === 0x45) {
      p++;
      const sign = s.charCodeAt(p);
      if (sign === 0x2b || sign === 0x2d) p++;
      p = this.digits(p);
    }
    this.pos = p;
    const raw = s.slice(start, p);
    return raw === '0' ? 0 : new JsonNumber(raw);
  }

  /** Skips one or more digits from `p`; none is a syntax error. */
  private digits(p: number): number {
    const from = p;
    let c = this.s.charCodeAt(p);
    while (c >= 0x30 && c <= 0x39) c = this.s.charCodeAt(++p);
    if (p === from) {
      this.pos = p;
      this.fail('invalid number');
    }
    return p;
  }

  private string(): string {
    const s = this.s;
    let p = this.pos + 1;
    let chunkStart = p;
    let out = '';
    for (;;) {
      const c = s.charCodeAt(p);
      if (c === 0x22) {
        this.pos = p + 1;
        return out + s.slice(chunkStart, p);
      }
      if (Number.isNaN(c)) {
        this.pos = p;
        this.fail('EOF while parsing a string');
      }
      if (c < 0x20) {
        this.pos = p;
        this.fail('control character in string');
      }
      if (c !== 0x5c) {
        p++;
        continue;
      }
      out += s.slice(chunkStart, p);
      const esc = s.charCodeAt(p + 1);
      p += 2;
      switch (esc) {
        case 0x22: out += '"'; break;
        case 0x5c: out += '\\'; break;
        case 0x2f: out += '/'; break;
        case 0x62: out += '\b'; break;
        case 0x66: out += '\f'; break;
        case 0x6e: out += '\n'; break;
        case 0x72: out += '\r'; break;
        case 0x74: out += '\t'; break;
        case 0x75: {
          const u = this.hex4(p);
          p += 4;
          if (u >= 0xdc00 && u <= 0xdfff) {
            this.pos = p;
            this.fail('lone trailing surrogate in hex escape');
          }
          if (u >= 0xd800 && u <= 0xdbff) {
            if (s.charCodeAt(p) !== 0x5c || s.charCodeAt(p + 1) !== 0x75) {
              this.pos = p;
              this.fail('lone leading surrogate in hex escape');
            }
            const lo = this.hex4(p + 2);
            if (lo < 0xdc00 || lo > 0xdfff) {
              this.pos = p;
              this.fail('lone leading surrogate in hex escape');
            }
            p += 6;
            out += String.fromCharCode(u, lo);
          } else {
            out += String.fromCharCode(u);
          }
          break;
        }
        default:
          this.pos = p - 1;
          this.fail('invalid escape');
      }
      chunkStart = p;
    }
  }

  private hex4(p: number): number {
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.s.charCodeAt(p + i);
      let d: number;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
      else {
        this.pos = p + i;
        this.fail('invalid \\u escape');
      }
      v = v * 16 + d;
    }
    return v;
  }
}
