/**
 * Vocabularies: map text to integer ids and back.
 *
 * - {@link ByteVocab}: V = 256, one id per UTF-8 byte. Handles any text (English, Russian, emoji...).
 * - {@link CharVocab}: one id per Unicode code point seen in the training data, plus `<unk>` (id 0)
 *   for anything unseen.
 *
 * Both serialise with `toJSON()`; {@link vocabFromJSON} restores either kind.
 */

export type VocabKind = 'bytes' | 'chars';

export interface Vocab {
  readonly kind: VocabKind;
  /** Number of ids; valid ids are 0 .. size-1. */
  readonly size: number;
  /** Text (or UTF-8 bytes) to ids. */
  encode(text: string | Uint8Array): Int32Array;
  /** Ids to text. Never throws on a partial/invalid UTF-8 sequence (uses U+FFFD). */
  decode(ids: ArrayLike<number>): string;
  /** Plain JSON-serialisable description; restore with {@link vocabFromJSON}. */
  toJSON(): object;
}

const utf8Encoder = new TextEncoder();

function checkId(id: number, size: number): number {
  if (!Number.isInteger(id) || id < 0 || id >= size) {
    throw new RangeError(`token id ${id} is out of range for a vocabulary of size ${size}`);
  }
  return id;
}

/** Byte-level vocabulary: ids are the UTF-8 bytes of the text (V = 256). */
export class ByteVocab implements Vocab {
  readonly kind = 'bytes' as const;
  readonly size = 256;

  encode(text: string | Uint8Array): Int32Array {
    const bytes = typeof text === 'string' ? utf8Encoder.encode(text) : text;
    const out = new Int32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) out[i] = bytes[i]!;
    return out;
  }

  /** Decodes bytes as UTF-8; invalid or truncated sequences become U+FFFD (never throws for ids 0..255). */
  decode(ids: ArrayLike<number>): string {
    const bytes = new Uint8Array(ids.length);
    for (let i = 0; i < ids.length; i++) bytes[i] = checkId(ids[i]!, 256);
    return new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(bytes);
  }

  /** A streaming decoder for sampling one byte at a time. */
  stream(): Utf8Stream {
    return new Utf8Stream();
  }

  toJSON(): { kind: 'bytes'; size: 256 } {
    return { kind: 'bytes', size: 256 };
  }
}

/**
 * Streaming UTF-8 decoder for byte-by-byte sampling: `push(byte)` returns the characters completed by
 * that byte ('' while a multi-byte character is still incomplete). Invalid sequences yield U+FFFD.
 *
 * ```ts
 * const s = new Utf8Stream();
 * for (const b of [0xd0, 0x9f]) process.stdout.write(s.push(b)); // writes 'П' after the 2nd byte
 * process.stdout.write(s.flush());
 * ```
 */
export class Utf8Stream {
  private decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  private one = new Uint8Array(1);

  /** Feed one byte (0..255); returns the completed characters, possibly ''. */
  push(byte: number): string {
    this.one[0] = checkId(byte, 256);
    return this.decoder.decode(this.one, { stream: true });
  }

  /** Feed several bytes at once. */
  pushAll(bytes: ArrayLike<number>): string {
    const b = new Uint8Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) b[i] = checkId(bytes[i]!, 256);
    return this.decoder.decode(b, { stream: true });
  }

  /** End of stream: returns U+FFFD for a dangling partial character, else ''. Resets the stream. */
  flush(): string {
    return this.decoder.decode();
  }
}

export interface CharVocabJSON {
  kind: 'chars';
  /** The known characters (one code point each), in id order; id = index + 1. */
  chars: string[];
  /** Id of the unknown-character token (always 0). */
  unk: 0;
  size: number;
}

export interface CharVocabOptions {
  /** Keep only characters seen at least this many times (default 1). */
  minCount?: number;
  /** Cap on the vocabulary size, `<unk>` included (default: no cap). */
  maxSize?: number;
}

/** Text shown by {@link CharVocab.decode} for the `<unk>` id. */
export const UNK_TEXT = '\uFFFD';

/**
 * Character (Unicode code point) vocabulary built from data. Id 0 is `<unk>`; ids 1..size-1 are the
 * sorted unique code points of the data it was built from. Unseen characters encode to 0; id 0 decodes
 * to U+FFFD.
 */
export class CharVocab implements Vocab {
  readonly kind = 'chars' as const;
  static readonly UNK = 0;
  readonly unk = CharVocab.UNK;
  /** Characters by id; chars[0] is '<unk>'. */
  readonly chars: readonly string[];
  private readonly bmp = new Int32Array(0x10000); // code point -> id (0 = unk) for the BMP
  private readonly astral = new Map<number, number>();

  /** @param chars the known characters (single code points, no duplicates), in id order from id 1. */
  constructor(chars: Iterable<string>) {
    const list: string[] = ['<unk>'];
    for (const ch of chars) {
      const cp = ch.codePointAt(0);
      if (cp === undefined || String.fromCodePoint(cp) !== ch) {
        throw new Error(`CharVocab: ${JSON.stringify(ch)} is not a single Unicode code point`);
      }
      if (this.idOf(cp) !== 0) throw new Error(`CharVocab: duplicate character ${JSON.stringify(ch)}`);
      const id = list.length;
      list.push(ch);
      if (cp < 0x10000) this.bmp[cp] = id;
      else this.astral.set(cp, id);
    }
    this.chars = list;
  }

  /**
   * Builds the vocabulary from the sorted unique code points of `data` (string or UTF-8 bytes).
   *
   * Options drop rare characters (they encode to `<unk>`): `minCount` keeps only characters seen at least
   * that many times; `maxSize` caps the vocabulary size (including `<unk>`), keeping the most frequent
   * characters (ties broken by code point). The kept characters are still sorted by code point.
   */
  static fromText(data: string | Uint8Array, options: CharVocabOptions = {}): CharVocab {
    const { minCount = 1, maxSize = Infinity } = options;
    if (!(minCount >= 1)) throw new RangeError(`CharVocab: minCount must be >= 1, got ${minCount}`);
    if (!(maxSize >= 2)) throw new RangeError(`CharVocab: maxSize must be >= 2 (<unk> + 1 char), got ${maxSize}`);
    const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
    const countBmp = new Float64Array(0x10000);
    const countAstral = new Map<number, number>();
    for (let i = 0; i < text.length; i++) {
      const cp = text.codePointAt(i)!;
      if (cp > 0xffff) {
        countAstral.set(cp, (countAstral.get(cp) ?? 0) + 1);
        i++;
      } else countBmp[cp]!++;
    }
    let kept: Array<[number, number]> = []; // [code point, count]
    for (let cp = 0; cp < 0x10000; cp++) if (countBmp[cp]! >= minCount) kept.push([cp, countBmp[cp]!]);
    for (const [cp, n] of countAstral) if (n >= minCount) kept.push([cp, n]);
    if (kept.length > maxSize - 1) {
      kept.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
      kept = kept.slice(0, maxSize - 1);
    }
    kept.sort((a, b) => a[0] - b[0]);
    return new CharVocab(kept.map(([cp]) => String.fromCodePoint(cp)));
  }

  static fromJSON(obj: unknown): CharVocab {
    const o = obj as Partial<CharVocabJSON> | null;
    if (!o || o.kind !== 'chars' || !Array.isArray(o.chars)) {
      throw new Error("CharVocab.fromJSON: expected { kind: 'chars', chars: [...] }");
    }
    const v = new CharVocab(o.chars);
    if (o.size !== undefined && o.size !== v.size) {
      throw new Error(`CharVocab.fromJSON: size ${o.size} does not match ${o.chars.length} chars + <unk>`);
    }
    return v;
  }

  get size(): number {
    return this.chars.length;
  }

  private idOf(cp: number): number {
    return cp < 0x10000 ? this.bmp[cp]! : (this.astral.get(cp) ?? 0);
  }

  encode(text: string | Uint8Array): Int32Array {
    const s = typeof text === 'string' ? text : new TextDecoder().decode(text);
    const out = new Int32Array(s.length); // upper bound on the number of code points
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const cp = s.codePointAt(i)!;
      if (cp > 0xffff) i++;
      out[n++] = this.idOf(cp);
    }
    return n === out.length ? out : out.slice(0, n);
  }

  decode(ids: ArrayLike<number>): string {
    const parts: string[] = new Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = checkId(ids[i]!, this.chars.length);
      parts[i] = id === 0 ? UNK_TEXT : this.chars[id]!;
    }
    return parts.join('');
  }

  toJSON(): CharVocabJSON {
    return { kind: 'chars', chars: this.chars.slice(1), unk: 0, size: this.size };
  }
}

/** Restores a vocabulary saved with `toJSON()` (accepts the object or its JSON string). */
export function vocabFromJSON(obj: unknown): Vocab {
  const o = (typeof obj === 'string' ? JSON.parse(obj) : obj) as { kind?: unknown } | null;
  if (o && o.kind === 'bytes') return new ByteVocab();
  if (o && o.kind === 'chars') return CharVocab.fromJSON(o);
  throw new Error(`vocabFromJSON: unknown vocabulary kind ${JSON.stringify(o?.kind)} (expected 'bytes' or 'chars')`);
}

/** Builds a vocabulary of the given kind for `data` (the data is only used for 'chars'). */
export function buildVocab(kind: VocabKind, data: string | Uint8Array, options: CharVocabOptions = {}): Vocab {
  if (kind === 'bytes') return new ByteVocab();
  if (kind === 'chars') return CharVocab.fromText(data, options);
  throw new Error(`unknown vocabulary kind ${JSON.stringify(kind)} (expected 'bytes' or 'chars')`);
}
