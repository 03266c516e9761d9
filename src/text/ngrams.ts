// Words as hashed character n-grams (fastText's subword model).
//
// A word w becomes `#w#` (boundary marks), split into every character n-gram with minn <= n <= maxn
// (default 3..6), plus the whole word `#w#` itself. Each string is hashed with 32-bit FNV-1a over its
// UTF-8 bytes into `buckets` rows of an embedding table; an EmbeddingBag sums or averages those rows.
//
// The two problems of this representation, and what rnnkit offers for each:
//  - words have different numbers of n-grams (a 3-letter word has 4 n-grams + itself, a 12-letter word 40):
//    the bag's `mode` is 'sum', 'mean' or 'sqrt' (sum scaled by 1/sqrt(n)); see EmbeddingBag.
//  - different n-grams share a bucket (collisions): `collisionStats` measures it for a corpus; more buckets
//    or fewer n-gram lengths lower it.

/** 32-bit FNV-1a hash of the UTF-8 bytes of s (offset basis 2166136261, prime 16777619). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  const byte = (b: number): void => { h = Math.imul(h ^ b, 0x01000193) >>> 0; };
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const lo = s.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo < 0xe000) { c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00); i++; }
    }
    if (c >= 0xd800 && c < 0xe000) c = 0xfffd; // lone surrogate: encoded as U+FFFD, like TextEncoder
    if (c < 0x80) byte(c);
    else if (c < 0x800) { byte(0xc0 | (c >> 6)); byte(0x80 | (c & 63)); }
    else if (c < 0x10000) { byte(0xe0 | (c >> 12)); byte(0x80 | ((c >> 6) & 63)); byte(0x80 | (c & 63)); }
    else { byte(0xf0 | (c >> 18)); byte(0x80 | ((c >> 12) & 63)); byte(0x80 | ((c >> 6) & 63)); byte(0x80 | (c & 63)); }
  }
  return h >>> 0;
}

export interface NgramOptions {
  /** Shortest n-gram (default 3). */
  minn?: number;
  /** Longest n-gram (default 6). */
  maxn?: number;
  /** Number of hash buckets (rows of the embedding table; default 2^16). */
  buckets?: number;
  /** Also emit the whole word `#w#` (default true). */
  word?: boolean;
}

export interface NgramConfig {
  minn: number;
  maxn: number;
  buckets: number;
  word: boolean;
}

export function ngramConfig(o: NgramOptions = {}): NgramConfig {
  const c = { minn: o.minn ?? 3, maxn: o.maxn ?? 6, buckets: o.buckets ?? 1 << 16, word: o.word ?? true };
  if (!Number.isInteger(c.minn) || c.minn < 1) throw new Error(`ngrams: minn must be an integer >= 1, got ${c.minn}`);
  if (!Number.isInteger(c.maxn) || c.maxn < c.minn) throw new Error(`ngrams: maxn must be an integer >= minn (${c.minn}), got ${c.maxn}`);
  if (!Number.isInteger(c.buckets) || c.buckets < 1) throw new Error(`ngrams: buckets must be a positive integer, got ${c.buckets}`);
  return c;
}

/**
 * The n-gram strings of one word: `#word#` cut into every n-gram with minn <= n <= maxn (by code points,
 * so Cyrillic letters count as one character each), then the whole `#word#` (when `word` is set and it is
 * not already one of the n-grams). Order: by start position, then by length.
 */
export function wordNgrams(word: string, o: NgramOptions = {}): string[] {
  const c = ngramConfig(o);
  const chars = Array.from(`#${word}#`);
  const out: string[] = [];
  for (let i = 0; i < chars.length; i++) {
    for (let n = c.minn; n <= c.maxn && i + n <= chars.length; n++) {
      if (n === chars.length && c.word) continue; // the whole word comes last
      out.push(chars.slice(i, i + n).join(''));
    }
  }
  if (c.word) out.push(chars.join(''));
  return out;
}

/** Bucket ids of a word's n-grams: fnv1a(ngram) % buckets. */
export function wordNgramIds(word: string, o: NgramOptions = {}): Int32Array {
  const c = ngramConfig(o);
  return Int32Array.from(wordNgrams(word, c), (g) => fnv1a(g) % c.buckets);
}

/** Words of a text: maximal runs of letters, digits and apostrophes, lower-cased. */
export function tokenizeWords(text: string): string[] {
  return (text.toLowerCase().match(/[\p{L}\p{N}'’]+/gu) ?? []);
}

/** A bag: flat ids with offsets (PyTorch's EmbeddingBag input/offsets convention). */
export interface Bags {
  ids: Int32Array;
  /** offsets[i] = start of bag i in ids; length = number of bags. */
  offsets: Int32Array;
}

/**
 * One bag per text: the n-gram ids of all its words (a sentence as a bag of hashed n-grams).
 * An empty text gives an empty bag (its vector is zero).
 */
export function textBags(texts: string[], o: NgramOptions = {}): Bags {
  const c = ngramConfig(o);
  const key = `${c.minn},${c.maxn},${c.buckets},${c.word}`;
  if (cacheKey !== key || cache.size > 200_000) { cache.clear(); cacheKey = key; }
  const ids: number[] = [], offsets: number[] = [];
  for (const t of texts) {
    offsets.push(ids.length);
    for (const w of tokenizeWords(t)) {
      let g = cache.get(w);
      if (!g) { g = wordNgramIds(w, c); cache.set(w, g); }
      for (let i = 0; i < g.length; i++) ids.push(g[i]);
    }
  }
  return { ids: Int32Array.from(ids), offsets: Int32Array.from(offsets) };
}

/** Word -> n-gram ids, for the last configuration textBags was called with. */
const cache = new Map<string, Int32Array>();
let cacheKey = '';

export interface CollisionStats {
  buckets: number;
  /** Distinct words and distinct n-gram strings (whole words included) in the corpus. */
  words: number;
  ngrams: number;
  /** Buckets holding at least one n-gram. */
  usedBuckets: number;
  /** Fraction of distinct n-grams that share their bucket with another distinct n-gram. */
  collisionRate: number;
  /** Same, weighted by occurrences in the corpus (the share of n-gram tokens that are ambiguous). */
  tokenCollisionRate: number;
  /** Expected collision rate of a uniform random hash with as many n-grams and buckets: 1-(1-1/B)^(N-1). */
  expectedRate: number;
  /** Mean and range of n-grams per word (the bag size problem). */
  ngramsPerWord: { mean: number; min: number; max: number };
}

/** Measure hash collisions of the n-grams of every word of a corpus. */
export function collisionStats(text: string, o: NgramOptions = {}): CollisionStats {
  const c = ngramConfig(o);
  const wordCounts = new Map<string, number>();
  for (const w of tokenizeWords(text)) wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  const gramCounts = new Map<string, number>();
  let sum = 0, min = Infinity, max = 0;
  for (const [w, k] of wordCounts) {
    const gs = wordNgrams(w, c);
    sum += gs.length; min = Math.min(min, gs.length); max = Math.max(max, gs.length);
    for (const g of gs) gramCounts.set(g, (gramCounts.get(g) ?? 0) + k);
  }
  const perBucket = new Map<number, number>();
  const bucketOf = new Map<string, number>();
  for (const g of gramCounts.keys()) {
    const b = fnv1a(g) % c.buckets;
    bucketOf.set(g, b);
    perBucket.set(b, (perBucket.get(b) ?? 0) + 1);
  }
  let collided = 0, tokens = 0, collidedTokens = 0;
  for (const [g, k] of gramCounts) {
    const shared = perBucket.get(bucketOf.get(g)!)! > 1;
    tokens += k;
    if (shared) { collided++; collidedTokens += k; }
  }
  const N = gramCounts.size;
  return {
    buckets: c.buckets,
    words: wordCounts.size,
    ngrams: N,
    usedBuckets: perBucket.size,
    collisionRate: N ? collided / N : 0,
    tokenCollisionRate: tokens ? collidedTokens / tokens : 0,
    expectedRate: N ? 1 - Math.pow(1 - 1 / c.buckets, N - 1) : 0,
    ngramsPerWord: { mean: wordCounts.size ? sum / wordCounts.size : 0, min: wordCounts.size ? min : 0, max },
  };
}
