/**
 * Corpus loading: raw bytes or cleaned article text, a contiguous train/validation split, and the path
 * of the bundled enwik8 sample.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileBytes, readHead } from './io.js';

export type TextMode = 'raw' | 'clean';

/** File name of the bundled sample inside the package's `data/` folder. */
export const SAMPLE_FILE = 'enwik8-sample.xml.gz';

const utf8 = new TextEncoder();

/** True if the bytes look like a MediaWiki XML dump (`<mediawiki`, after an optional BOM, whitespace and `<?xml ...?>`). */
export function looksLikeMediaWiki(head: Uint8Array): boolean {
  const s = new TextDecoder('utf-8', { fatal: false, ignoreBOM: false })
    .decode(head.subarray(0, 4096))
    .replace(/^\uFEFF/, '')
    .replace(/^\s*<\?xml[^>]*\?>/, '')
    .replace(/^\s*(<!--[\s\S]*?-->\s*)*/, '')
    .trimStart();
  return s.startsWith('<mediawiki');
}

/**
 * Loads a text corpus as UTF-8 bytes.
 *
 * - `raw`: the file's bytes exactly (gunzipped if it is gzip).
 * - `clean`: for a MediaWiki XML dump, the article pages (namespace 0, no redirects) converted to plain
 *   text by `wtf_wikipedia`, each as `title\n<text>`, joined by "\n\n" (streamed, page by page). Any
 *   other file is returned as is.
 *
 * Errors name the file: `cannot read data file 'x': no such file`, `data file 'x' is empty`,
 * `data file 'x' is not valid gzip (...)`.
 */
export async function loadText(file: string, mode: TextMode = 'raw'): Promise<Uint8Array> {
  if (mode !== 'raw' && mode !== 'clean') {
    throw new Error(`unknown text mode ${JSON.stringify(mode)} (expected 'raw' or 'clean')`);
  }
  if (mode === 'raw') return readFileBytes(file);
  const head = await readHead(file);
  if (!looksLikeMediaWiki(head)) return readFileBytes(file);
  const { cleanPages } = await import('./wikidump.js'); // lazy: loads wtf_wikipedia only when needed
  const parts: Uint8Array[] = [];
  let total = 0;
  const sep = utf8.encode('\n\n');
  for await (const page of cleanPages(file)) {
    if (parts.length > 0) {
      parts.push(sep);
      total += sep.length;
    }
    const b = utf8.encode(`${page.title}\n${page.text}`);
    parts.push(b);
    total += b.length;
  }
  if (total === 0) throw new Error(`data file '${file}' has no article text after cleaning`);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export interface TrainValidSplit<T> {
  train: T;
  valid: T;
}

/**
 * Contiguous split: the first (1 - validFraction) of the data is training, the rest validation.
 * Returns views (no copies). With 0 < validFraction < 1 and at least 2 items, both parts are non-empty.
 */
export function splitTrainValid<T extends Uint8Array | Int32Array>(data: T, validFraction = 0.05): TrainValidSplit<T> {
  if (!(validFraction >= 0 && validFraction < 1)) {
    throw new RangeError(`validFraction must be in [0, 1), got ${validFraction}`);
  }
  const n = data.length;
  let nValid = Math.round(n * validFraction);
  if (validFraction > 0 && n >= 2) nValid = Math.min(Math.max(nValid, 1), n - 1);
  const cut = n - nValid;
  return { train: data.subarray(0, cut) as T, valid: data.subarray(cut) as T };
}

let cachedRoot: string | undefined;

/**
 * The root folder of the installed rnnkit package: walks up from this module until a package.json
 * with `"name": "rnnkit"` is found (works from `src/data` and from the compiled `dist/src/data`).
 */
export function packageRoot(): string {
  if (cachedRoot) return cachedRoot;
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = dirname(dir)) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'rnnkit') return (cachedRoot = dir);
      } catch {
        /* unreadable package.json: keep walking */
      }
    }
    if (dirname(dir) === dir) break;
  }
  // Fallback: dist/src/data/corpus.js -> three levels up.
  return (cachedRoot = resolve(here, '..', '..', '..'));
}

/** Absolute path of the bundled enwik8 sample (`data/enwik8-sample.xml.gz` in the package). */
export function defaultDataPath(): string {
  return join(packageRoot(), 'data', SAMPLE_FILE);
}
