#!/usr/bin/env node
// Builds data/tasks/sentences.tsv.gz, the bundled default dataset of `rnnkit task ...`:
// real Wikipedia sentences in five languages, one per line as `lang<TAB>sentence`.
//
//   npx tsc -p tsconfig.json && node scripts/make_task_data.mjs [/work/shared/data/wikipedia]
//
// Sources (see data/tasks/README.md): English = WikiExtractor text of an English Wikipedia dump (2015),
// German/Afrikaans/Nynorsk = wikitext pages of the wtf_wikipedia test fixtures (cleaned with rnnkit's
// cleaner), Russian = Leipzig Corpora Collection, Russian Wikipedia 2021, 10K sentences.
// Deterministic: files are read in sorted order and sentences are taken in order, no randomness.

import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { cleanWikitext } = await import(join(root, 'dist/src/data/wikidump.js'));
const src = process.argv[2] ?? '/work/shared/data/wikipedia';
// Afrikaans (5 usable sentences) and Nynorsk (25) are too small for a class of their own: not used.
const PER_LANG = { en: 800, ru: 800, de: 800 };

/** Split running text into sentences; keep the ones that look like prose. */
function sentences(text) {
  const out = [];
  for (const para of text.split(/\n+/)) {
    for (let s of para.split(/(?<=[.!?])\s+(?=[\p{Lu}«"„])/u)) {
      s = s.replace(/\s+/g, ' ').trim();
      if (s.length < 25 || s.length > 160) continue;
      if (!/[.!?]$/.test(s)) continue;
      const letters = (s.match(/\p{L}/gu) ?? []).length;
      if (letters / s.length < 0.7) continue;
      if (/[|{}[\]=<>_]|https?:|\.jpg|\.png|^\p{Ll}/u.test(s)) continue;
      out.push(s);
    }
  }
  return out;
}

const data = { en: [], ru: [], de: [] };
const seen = new Set();
const add = (lang, list) => {
  for (const s of list) {
    if (data[lang].length >= PER_LANG[lang]) return;
    if (seen.has(s)) continue;
    seen.add(s);
    data[lang].push(s);
  }
};

// English: plain text between <doc> tags, every file in order, first sentences of each article.
const enDir = join(src, 'wikitext/enwiki_extracted_2015');
for (const f of readdirSync(enDir).sort()) {
  if (data.en.length >= PER_LANG.en) break;
  const docs = readFileSync(join(enDir, f), 'utf8').split(/<\/doc>/);
  for (const d of docs) {
    const body = d.replace(/<doc[^>]*>\n[^\n]*\n/, ''); // drop the tag and the title line
    add('en', sentences(body).slice(0, 3)); // at most 3 sentences per article: more topics
  }
}
// German, Afrikaans, Nynorsk: cleaned wikitext pages.
const neDir = join(src, 'pages/wtf_wikipedia/non_english');
for (const f of readdirSync(neDir).sort()) {
  const lang = f.slice(0, 2);
  if (!(lang in data)) continue;
  add(lang, sentences(cleanWikitext(readFileSync(join(neDir, f), 'utf8'))));
}
// Russian: Leipzig sentences (`id<TAB>sentence`), skipping the fragments at the start of the file.
const ru = readFileSync(join(src, 'ruwiki/leipzig_rus_wikipedia_2021_10K-sentences.txt'), 'utf8')
  .split('\n').map((l) => l.split('\t')[1] ?? '');
add('ru', sentences(ru.filter((_, i) => i % 7 === 0).join('\n'))); // every 7th: spread over the file

const lines = [];
for (const [lang, list] of Object.entries(data)) for (const s of list) lines.push(`${lang}\t${s}`);
const outDir = join(root, 'data/tasks');
mkdirSync(outDir, { recursive: true });
const gz = gzipSync(Buffer.from(lines.join('\n') + '\n'), { level: 9 });
writeFileSync(join(outDir, 'sentences.tsv.gz'), gz);
for (const [lang, list] of Object.entries(data)) console.log(lang, list.length);
console.log(`sentences.tsv.gz: ${lines.length} sentences, ${gz.length} bytes`);
