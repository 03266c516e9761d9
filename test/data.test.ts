import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ByteVocab, CharVocab, Utf8Stream, vocabFromJSON, buildVocab } from '../src/data/vocab.js';
import { readPages, cleanWikitext, cleanPages, decodeXmlEntities } from '../src/data/wikidump.js';
import { loadText, splitTrainValid, defaultDataPath, packageRoot, looksLikeMediaWiki } from '../src/data/corpus.js';

const ROOT = packageRoot();
const SHARED = resolve(ROOT, '..', 'shared', 'data', 'wikipedia');
const ENWIK8 = join(SHARED, 'enwik8', 'enwik8_bytes_0_3405276.xml');
const GENSIM = join(SHARED, 'pages', 'gensim', 'enwiki-2016-pages-articles1-shortened.xml');
const SAMPLE_LEN = 3405276;

const EN = 'Hello, world! The quick brown fox.';
const RU = 'Съешь же ещё этих мягких французских булок, да выпей чаю. Ёлка 🎄';

const tmp = mkdtempSync(join(tmpdir(), 'rnnkit-data-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

// ---------------------------------------------------------------- vocab

test('ByteVocab round-trips English and Russian text', () => {
  const v = new ByteVocab();
  assert.equal(v.size, 256);
  for (const s of [EN, RU, '']) {
    const ids = v.encode(s);
    assert.ok(ids instanceof Int32Array);
    assert.equal(ids.length, Buffer.byteLength(s));
    assert.ok(ids.every((x) => x >= 0 && x < 256));
    assert.equal(v.decode(ids), s);
    assert.deepEqual(v.encode(new TextEncoder().encode(s)), ids);
  }
  assert.equal(v.encode('Ж').length, 2);
});

test('ByteVocab.decode of a partial UTF-8 sequence does not throw', () => {
  const v = new ByteVocab();
  const ids = v.encode('Жж'); // 4 bytes
  assert.equal(v.decode(ids.subarray(0, 3)), 'Ж\uFFFD');
  assert.equal(v.decode([0xff, 0x41]), '\uFFFDA');
  assert.throws(() => v.decode([256]), RangeError);
});

test('Utf8Stream emits complete characters byte by byte', () => {
  const bytes = new ByteVocab().encode(RU);
  const s = new Utf8Stream();
  let out = '';
  const emitted: string[] = [];
  for (const b of bytes) {
    const piece = s.push(b);
    emitted.push(piece);
    out += piece;
  }
  out += s.flush();
  assert.equal(out, RU);
  assert.equal(emitted[0], ''); // first byte of 'С' alone is incomplete
  assert.equal(emitted[1], 'С');
  const t = new Utf8Stream();
  assert.equal(t.push(0xd0), '');
  assert.equal(t.flush(), '\uFFFD'); // dangling partial char
  assert.equal(t.pushAll([0x41, 0xd0, 0x96]), 'AЖ');
});

test('CharVocab: sorted code points, <unk> for unseen, JSON round trip', () => {
  const v = CharVocab.fromText('banana 🍌');
  assert.deepEqual(v.chars, ['<unk>', ' ', 'a', 'b', 'n', '🍌']);
  assert.equal(v.size, 6);
  assert.equal(v.unk, 0);
  assert.deepEqual([...v.encode('nab🍌')], [4, 2, 3, 5]);
  assert.deepEqual([...v.encode('cab')], [0, 2, 3]);
  assert.equal(v.decode(v.encode('banana 🍌')), 'banana 🍌');
  assert.equal(v.decode(v.encode('xab')), '\uFFFDab');
  const json = JSON.parse(JSON.stringify(v));
  const w = vocabFromJSON(json);
  assert.ok(w instanceof CharVocab);
  assert.equal(w.size, v.size);
  assert.deepEqual(w.encode('banana!'), v.encode('banana!'));
  const ru = CharVocab.fromText(new TextEncoder().encode(RU));
  assert.equal(ru.decode(ru.encode(RU)), RU);
  assert.ok(vocabFromJSON(JSON.stringify(new ByteVocab())) instanceof ByteVocab);
  assert.equal(buildVocab('chars', 'ab').size, 3);
  const capped = CharVocab.fromText('aaaabbbcc d', { maxSize: 3 });
  assert.deepEqual(capped.chars, ['<unk>', 'a', 'b']);
  assert.deepEqual(CharVocab.fromText('aaaabbbcc d', { minCount: 2 }).chars, ['<unk>', 'a', 'b', 'c']);
  assert.throws(() => vocabFromJSON({ kind: 'words' }), /unknown vocabulary kind/);
});

// ---------------------------------------------------------------- wikidump

test('decodeXmlEntities', () => {
  assert.equal(decodeXmlEntities('&lt;ref&gt; &amp; &quot;q&quot; &#39;s&apos; &#1046;&#x416;'), '<ref> & "q" \'s\' ЖЖ');
  assert.equal(decodeXmlEntities('&amp;lt;'), '&lt;'); // one pass only
  assert.equal(decodeXmlEntities('&nbsp; & x;'), '&nbsp; & x;'); // unknown left alone
});

const MINI = `<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10">
  <siteinfo><namespaces><namespace key="0" case="first-letter" /><namespace key="1">Talk</namespace></namespaces></siteinfo>
  <page>
    <title>A &amp; B</title>
    <ns>0</ns>
    <id>12</id>
    <revision><id>999</id><text xml:space="preserve">'''A''' &amp; [[Bee (insect)|bee]] &lt;ref&gt;x&lt;/ref&gt; &#1046; &quot;q&quot;</text></revision>
  </page>
  <page>
    <title>Old</title>
    <ns>0</ns>
    <id>13</id>
    <redirect title="A &amp; B" />
    <revision><id>1000</id><text xml:space="preserve">#REDIRECT [[A &amp; B]]</text></revision>
  </page>
  <page>
    <title>Empty</title>
    <ns>1</ns>
    <id>14</id>
    <revision><id>1001</id><text xml:space="preserve" /></revision>
  </page>
</mediawiki>
`;

test('readPages parses a small 0.10 dump (entities, redirect, empty text), in any chunking, gzipped or not', async () => {
  const bytes = new TextEncoder().encode(MINI);
  for (const src of [chunked(bytes, 1 << 16), chunked(bytes, 7), chunked(gzipSync(bytes), 13)]) {
    const pages = [];
    for await (const p of readPages(src)) pages.push(p);
    assert.equal(pages.length, 3);
    assert.deepEqual(pages[0], {
      title: 'A & B',
      id: 12,
      ns: 0,
      redirect: false,
      text: `'''A''' & [[Bee (insect)|bee]] <ref>x</ref> Ж "q"`,
    });
    assert.equal(pages[1]!.redirect, true);
    assert.equal(pages[1]!.id, 13);
    assert.equal(pages[2]!.text, '');
    assert.equal(pages[2]!.ns, 1);
  }
});

test('readPages on the bundled sample (enwik8, export 0.3)', async () => {
  const t0 = Date.now();
  let n = 0;
  let redirects = 0;
  let first: { title: string; id: number } | undefined;
  let last: { title: string; id: number } | undefined;
  let anarchism = '';
  for await (const p of readPages(defaultDataPath())) {
    n++;
    if (!first) first = p;
    last = p;
    if (p.redirect) redirects++;
    if (p.title === 'Anarchism') anarchism = p.text;
  }
  assert.equal(n, 409);
  assert.equal(redirects, 218);
  assert.deepEqual({ title: first!.title, id: first!.id }, { title: 'AaA', id: 1 });
  assert.deepEqual({ title: last!.title, id: last!.id }, { title: 'Alp Arslan', id: 868 });
  assert.ok(anarchism.includes('<ref'), 'entities decoded in page text');
  assert.ok(!anarchism.includes('&lt;'));
  assert.ok(Date.now() - t0 < 5000);
});

test('readPages on a gensim export-0.10 dump', async (t) => {
  if (!existsSync(GENSIM)) {
    t.skip(`shared data not found at ${GENSIM}`);
    return;
  }
  let n = 0;
  let redirects = 0;
  const titles: string[] = [];
  for await (const p of readPages(GENSIM)) {
    n++;
    if (p.redirect) redirects++;
    titles.push(p.title);
    if (n === 1) assert.deepEqual([p.title, p.id, p.ns, p.redirect], ['AccessibleComputing', 10, 0, true]);
  }
  assert.equal(n, 206);
  assert.equal(redirects, 100);
  assert.ok(titles.includes('Anarchism'));
});

test('cleanWikitext removes markup; redirects and broken pages give ""', () => {
  const wiki = `'''Anarchism''' is a [[political philosophy|philosophy]] {{cite web|url=x}} that ''rejects'' the [[State (polity)|state]].<ref>Some ref</ref>

[[Image:Foo.png|thumb|A [[nested]] caption]]
== History ==
It began in [[1840]]&nbsp;&mdash; &#945;.

[[Category:Politics]]`;
  const clean = cleanWikitext(wiki);
  for (const bad of ['[[', ']]', '{{', '}}', "'''", "''", '<ref', '&nbsp;', '&#945;', 'Category:', 'thumb']) {
    assert.ok(!clean.includes(bad), `${JSON.stringify(bad)} left in ${JSON.stringify(clean)}`);
  }
  assert.match(clean, /^Anarchism is a philosophy +that rejects the state\./);
  assert.match(clean, /It began in 1840\s\u2014 α\./);
  assert.equal(cleanWikitext('#REDIRECT [[Foo]]'), '');
  assert.equal(cleanWikitext(''), '');
  assert.equal(typeof cleanWikitext('{{{{[[[[<<<|}}'), 'string');
});

// ---------------------------------------------------------------- corpus

test('loadText raw on the bundled sample is byte-exact enwik8', async (t) => {
  const raw = await loadText(defaultDataPath(), 'raw');
  assert.equal(raw.length, SAMPLE_LEN);
  assert.equal(new TextDecoder().decode(raw.subarray(0, 10)), '<mediawiki');
  assert.ok(looksLikeMediaWiki(raw));
  if (!existsSync(ENWIK8)) {
    t.diagnostic(`shared enwik8 not found at ${ENWIK8}; skipped the byte comparison`);
    return;
  }
  const ref = readFileSync(ENWIK8);
  assert.ok(Buffer.from(raw.buffer, raw.byteOffset, raw.length).equals(ref.subarray(0, raw.length)));
});

test('loadText clean on the bundled sample gives plain article text', async (t) => {
  const t0 = Date.now();
  const clean = await loadText(defaultDataPath(), 'clean');
  const ms = Date.now() - t0;
  t.diagnostic(`clean mode on the bundled sample: ${ms} ms, ${clean.length} bytes`);
  const s = new TextDecoder('utf-8', { fatal: true }).decode(clean);
  assert.ok(clean.length > 1_500_000 && clean.length < SAMPLE_LEN, `${clean.length}`);
  assert.ok(s.startsWith('Anarchism\nAnarchism '), s.slice(0, 50));
  for (const bad of ['{{', "'''", '&lt;', '&amp;', '<ref', '</', '#REDIRECT']) {
    assert.ok(!s.includes(bad), `${JSON.stringify(bad)} left in the clean text`);
  }
  assert.ok((s.match(/\[\[/g) ?? []).length <= 2);
  let pages = 0;
  for await (const _ of cleanPages(defaultDataPath())) pages++;
  assert.equal(pages, 191);
});

test('loadText clean on a non-dump file returns it as is; raw gunzips .gz', async () => {
  const txt = join(tmp, 'plain.txt');
  writeFileSync(txt, RU);
  assert.equal(new TextDecoder().decode(await loadText(txt, 'clean')), RU);
  const gz = join(tmp, 'plain.txt.gz');
  writeFileSync(gz, gzipSync(Buffer.from(RU)));
  assert.equal(new TextDecoder().decode(await loadText(gz, 'raw')), RU);
  assert.equal(new TextDecoder().decode(await loadText(gz, 'clean')), RU);
  const dump = join(tmp, 'mini.xml');
  writeFileSync(dump, '\uFEFF\n' + MINI);
  assert.equal(new TextDecoder().decode(await loadText(dump, 'clean')), 'A & B\nA & bee Ж "q"');
});

test('loadText errors name the file and the reason', async () => {
  const missing = join(tmp, 'nope.txt');
  await assert.rejects(loadText(missing, 'raw'), (e: Error) => {
    assert.equal(e.message, `cannot read data file '${missing}': no such file`);
    return true;
  });
  await assert.rejects(loadText(missing, 'clean'), /cannot read data file '.*nope\.txt': no such file/);
  await assert.rejects(loadText(tmp, 'raw'), /cannot read data file '.*': it is a directory/);
  const empty = join(tmp, 'empty.txt');
  writeFileSync(empty, '');
  await assert.rejects(loadText(empty, 'raw'), { message: `data file '${empty}' is empty` });
  await assert.rejects(loadText(empty, 'clean'), { message: `data file '${empty}' is empty` });
  const bad = join(tmp, 'bad.xml.gz');
  writeFileSync(bad, 'this is not gzip at all');
  await assert.rejects(loadText(bad, 'raw'), /data file '.*bad\.xml\.gz' is not valid gzip/);
  await assert.rejects(loadText(bad, 'clean'), /data file '.*bad\.xml\.gz' is not valid gzip/);
  const truncated = join(tmp, 'trunc.txt.gz');
  writeFileSync(truncated, gzipSync(Buffer.from(RU.repeat(50))).subarray(0, 40));
  await assert.rejects(loadText(truncated, 'raw'), /data file '.*trunc\.txt\.gz' is not valid gzip/);
  await assert.rejects(loadText(EN_FILE(), 'bogus' as 'raw'), /unknown text mode/);
  const bz = join(tmp, 'dump.xml.bz2');
  writeFileSync(bz, Buffer.from('BZh91AY&SY...'));
  await assert.rejects(loadText(bz, 'clean'), /data file '.*dump\.xml\.bz2' is bzip2-compressed.*bunzip2/);
});

function EN_FILE(): string {
  const f = join(tmp, 'en.txt');
  writeFileSync(f, EN);
  return f;
}

test('splitTrainValid is contiguous, last part validation', () => {
  const d = new Uint8Array(1000).map((_, i) => i % 251);
  const { train, valid } = splitTrainValid(d);
  assert.equal(train.length, 950);
  assert.equal(valid.length, 50);
  assert.equal(valid[0], d[950]);
  assert.ok(train instanceof Uint8Array);
  const ids = new Int32Array([1, 2, 3]);
  const s = splitTrainValid(ids, 0.1);
  assert.deepEqual([...s.train], [1, 2]);
  assert.deepEqual([...s.valid], [3]);
  assert.ok(s.valid instanceof Int32Array);
  assert.equal(splitTrainValid(ids, 0).valid.length, 0);
  assert.throws(() => splitTrainValid(ids, 1), RangeError);
});

test('defaultDataPath points into the package data folder', () => {
  const p = defaultDataPath();
  assert.equal(p, join(ROOT, 'data', 'enwik8-sample.xml.gz'));
  assert.ok(existsSync(p));
  assert.equal(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).name, 'rnnkit');
});
