/**
 * Streaming reader for MediaWiki XML dumps (export 0.3 as in enwik8, up to 0.10/0.11 as in current
 * dumps) and a wikitext-to-plain-text cleaner built on `wtf_wikipedia`.
 *
 * The reader holds at most one `<page>` (plus one input chunk) in memory, so it works on full dumps.
 */
import wtf from 'wtf_wikipedia';
import { isGzip, streamFile } from './io.js';
import { decodeHtmlEntities } from './htmlentities.js';
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';

export interface WikiPage {
  title: string;
  /** Page id (the first `<id>` of the page, not the revision id); NaN if missing. */
  id: number;
  /** Wikitext of the (last) revision, XML entities decoded. '' for an empty page. */
  text: string;
  /** Namespace number: from `<ns>` (export ≥ 0.4), else from the title prefix and the dump's siteinfo. */
  ns: number;
  /** True if the page is a redirect (`<redirect>` element or text starting with #REDIRECT). */
  redirect: boolean;
}

const NAMED_ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/**
 * Decodes XML entities in one pass: `&lt; &gt; &amp; &quot; &apos; &#NNN; &#xHH;`.
 * Unknown entities and invalid code points are left as written.
 */
export function decodeXmlEntities(s: string): string {
  if (s.indexOf('&') < 0) return s;
  return s.replace(/&(#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);/g, (m, body: string) => {
    if (body[0] === '#') {
      const cp = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return Number.isFinite(cp) && cp >= 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return NAMED_ENTITIES[body] ?? m;
  });
}

function elementText(xml: string, tag: string): string | undefined {
  const open = xml.indexOf(`<${tag}`);
  if (open < 0) return undefined;
  const gt = xml.indexOf('>', open);
  if (gt < 0) return undefined;
  if (xml[gt - 1] === '/') return ''; // <tag ... />
  const close = xml.indexOf(`</${tag}>`, gt + 1);
  if (close < 0) return undefined;
  return xml.slice(gt + 1, close);
}

/** Parses namespaces from a `<siteinfo>` block: prefix (e.g. 'Talk') -> key. */
function parseNamespaces(siteinfo: string): Map<string, number> {
  const m = new Map<string, number>();
  const re = /<namespace\b[^>]*?\bkey="(-?\d+)"[^>]*?(?:\/>|>([^<]*)<\/namespace>)/g;
  for (let r = re.exec(siteinfo); r; r = re.exec(siteinfo)) {
    const name = decodeXmlEntities(r[2] ?? '').trim();
    if (name) m.set(name, Number(r[1]));
  }
  return m;
}

function parsePage(xml: string, namespaces: Map<string, number>): WikiPage {
  const title = decodeXmlEntities(elementText(xml, 'title') ?? '');
  // The page id is the first <id> before <revision>.
  const revAt = xml.indexOf('<revision');
  const head = revAt >= 0 ? xml.slice(0, revAt) : xml;
  const idText = elementText(head, 'id');
  const id = idText === undefined ? NaN : Number(idText.trim());
  const nsText = elementText(head, 'ns');
  let ns = 0;
  if (nsText !== undefined && nsText.trim() !== '') ns = Number(nsText.trim());
  else {
    const colon = title.indexOf(':');
    if (colon > 0) ns = namespaces.get(title.slice(0, colon)) ?? 0;
  }
  // Take the last revision's text (dumps with full history have several).
  const textAt = xml.lastIndexOf('<text');
  const text = textAt >= 0 ? decodeXmlEntities(elementText(xml.slice(textAt), 'text') ?? '') : '';
  const redirect = /<redirect\b/.test(head) || /^\s*#REDIRECT/i.test(text);
  return { title, id, text, ns, redirect };
}

async function* bytesOf(source: string | AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  if (typeof source === 'string') {
    yield* streamFile(source);
    return;
  }
  // An in-memory/stream source: gunzip if it starts with the gzip magic.
  const it = source[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return;
  const rest = (async function* (): AsyncGenerator<Uint8Array> {
    yield first.value;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  })();
  if (!isGzip(first.value)) {
    yield* rest;
    return;
  }
  const gz = Readable.from(rest).pipe(createGunzip());
  try {
    for await (const chunk of gz) yield chunk as Uint8Array;
  } catch (err) {
    throw new Error(`dump stream is not valid gzip (${(err as Error)?.message ?? err})`, { cause: err });
  }
}

/**
 * Streams the pages of a MediaWiki XML dump.
 *
 * @param source a file path (`.gz` files, or files starting with the gzip magic, are decompressed on
 *   the fly) or an async iterable of bytes (e.g. `fs.createReadStream(path)`).
 */
export async function* readPages(source: string | AsyncIterable<Uint8Array>): AsyncGenerator<WikiPage> {
  const decoder = new TextDecoder('utf-8');
  let buf = '';
  let namespaces = new Map<string, number>();
  let sawSiteinfo = false;
  let searchFrom = 0; // where to resume looking for '</page>' in buf
  const flushPages = function* (): Generator<WikiPage> {
    for (;;) {
      if (!sawSiteinfo) {
        const end = buf.indexOf('</siteinfo>');
        if (end >= 0) {
          namespaces = parseNamespaces(buf.slice(0, end));
          sawSiteinfo = true;
        } else if (buf.indexOf('<page>') >= 0 || buf.indexOf('<page ') >= 0 || buf.length > 1 << 20) {
          sawSiteinfo = true; // no siteinfo in this dump
        }
      }
      let start = buf.indexOf('<page>');
      if (start < 0) start = buf.indexOf('<page ');
      if (start < 0) {
        // Nothing to parse yet; drop everything except a possible partial '<page' / '</siteinfo>'.
        if (sawSiteinfo && buf.length > 16) buf = buf.slice(buf.length - 16);
        searchFrom = 0;
        return;
      }
      if (start > 0) {
        buf = buf.slice(start);
        searchFrom = Math.max(0, searchFrom - start);
      }
      const end = buf.indexOf('</page>', searchFrom);
      if (end < 0) {
        searchFrom = Math.max(0, buf.length - 7);
        return;
      }
      const pageXml = buf.slice(0, end + 7);
      buf = buf.slice(end + 7);
      searchFrom = 0;
      yield parsePage(pageXml, namespaces);
    }
  };
  // Inside a page, text is collected in `pending` and only joined into `buf` (and searched) when a piece
  // brings a '</page>': searching one growing string after every chunk was quadratic (a 64 MB page took 35 s).
  // A page longer than MAX_PAGE_CHARS without '</page>' is a damaged or hostile dump: a clear error.
  let pending: string[] = [], pendingChars = 0, tail = '';
  const flushPending = (): void => { buf += pending.join(''); pending = []; pendingChars = 0; };
  const inOpenPage = (): boolean => searchFrom > 0 && (buf.startsWith('<page>') || buf.startsWith('<page '));
  for await (const chunk of bytesOf(source)) {
    const s = decoder.decode(chunk, { stream: true });
    if (inOpenPage() && !(tail + s).includes('</page>')) {
      pending.push(s);
      pendingChars += s.length;
      tail = s.length >= 7 ? s.slice(-7) : (tail + s).slice(-7);
      if (buf.length + pendingChars > MAX_PAGE_CHARS) {
        const where = typeof source === 'string' ? `data file '${source}'` : 'dump stream';
        throw new Error(`${where}: a <page> runs past ${MAX_PAGE_CHARS / 2 ** 20} Mi characters without </page> (damaged or truncated dump?)`);
      }
      continue;
    }
    flushPending();
    buf += s;
    tail = buf.slice(-7);
    yield* flushPages();
  }
  flushPending();
  buf += decoder.decode();
  yield* flushPages();
}

/** Longest <page> element readPages accepts (MediaWiki caps one revision's text at 2 MiB; full-history pages are longer). */
export const MAX_PAGE_CHARS = 256 * 2 ** 20;

/** Cleaned text of a page, or '' if it is a redirect, empty, or makes the parser fail. */
export function cleanWikitext(wikitext: string): string {
  if (!wikitext || /^\s*#REDIRECT/i.test(wikitext)) return '';
  let text: string;
  try {
    const doc = wtf(wikitext);
    if (doc.isRedirect()) return '';
    text = doc.text();
  } catch {
    return '';
  }
  if (typeof text !== 'string') return '';
  return tidy(text);
}

/**
 * Removes blocks that start where `startRe` matches and end at the balancing `close` (nesting counted with
 * `open`), e.g. `[[Image:...[[link]]...]]` or `{| ... |}`. An unbalanced block stops at a blank line.
 */
function dropBalanced(text: string, startRe: RegExp, open: string, close: string): string {
  let out = '';
  let last = 0;
  startRe.lastIndex = 0;
  for (let m = startRe.exec(text); m; m = startRe.exec(text)) {
    let depth = 0;
    let i = m.index;
    let end = -1;
    while (i < text.length) {
      if (text.startsWith(open, i)) {
        depth++;
        i += open.length;
      } else if (text.startsWith(close, i)) {
        depth--;
        i += close.length;
        if (depth === 0) {
          end = i;
          break;
        }
      } else if (text[i] === '\n' && text[i + 1] === '\n') {
        end = i; // unbalanced: stop at the paragraph end
        break;
      } else i++;
    }
    if (end < 0) end = text.length;
    out += text.slice(last, m.index);
    last = end;
    startRe.lastIndex = Math.max(end, m.index + 1);
  }
  return out + text.slice(last);
}

/** Post-processing of wtf's output: drop leftover markup and HTML tags, decode HTML entities, normalise blank lines. */
function tidy(text: string): string {
  text = text.replace(/\r\n?/g, '\n');
  if (text.includes('[[')) text = dropBalanced(text, /\[\[\s*(?:Image|File|Media|Category)\s*:/gi, '[[', ']]');
  if (text.includes('{|')) text = dropBalanced(text, /(?<=^|\n)[ \t:]*\{\|/g, '{|', '|}'); // tables wtf did not parse (start of line)
  text = text
    .replace(/\{\{[^{}]*\}\}/g, '') // leftover simple templates
    .replace(/\[\[(?:[^\[\]|]*\|)?([^\[\]]*)\]\]/g, '$1') // leftover [[link|label]]
    .replace(/'''''|'''|''/g, '') // bold/italic quotes
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<\/?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?\/?>/g, ''); // HTML tags such as <tt>, <sup>, <br />
  return decodeHtmlEntities(text)
    .replace(/[ \t]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

export interface CleanPage {
  title: string;
  id: number;
  /** Plain article text (no markup). */
  text: string;
}

export interface CleanPagesOptions {
  /** Only pages in these namespaces (default: [0], the articles). */
  namespaces?: number[];
}

/** Streams the cleaned article pages of a dump, skipping redirects, non-articles, and pages wtf fails on. */
export async function* cleanPages(
  source: string | AsyncIterable<Uint8Array>,
  options: CleanPagesOptions = {},
): AsyncGenerator<CleanPage> {
  const ns = new Set(options.namespaces ?? [0]);
  for await (const page of readPages(source)) {
    if (page.redirect || !ns.has(page.ns)) continue;
    const text = cleanWikitext(page.text);
    if (!text) continue;
    yield { title: page.title, id: page.id, text };
  }
}
