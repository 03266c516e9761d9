// Words as hashed character n-grams: FNV-1a, the n-gram list, bags of a text, collision statistics.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { collisionStats, fnv1a, textBags, tokenizeWords, wordNgramIds, wordNgrams } from '../src/text/ngrams.js';

test('FNV-1a 32-bit matches the published test vectors', () => {
  // from the FNV reference (Fowler/Noll/Vo), 32-bit FNV-1a
  assert.equal(fnv1a(''), 0x811c9dc5);
  assert.equal(fnv1a('a'), 0xe40c292c);
  assert.equal(fnv1a('foobar'), 0xbf9cf968);
  // hashes the UTF-8 bytes: a Cyrillic letter is 2 bytes
  let h = 0x811c9dc5;
  for (const byte of [0xd0, 0xb6]) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  assert.equal(fnv1a('ж'), h);
});

test('wordNgrams: #word# cut into 3..6-grams, plus the whole word', () => {
  assert.deepEqual(wordNgrams('where', { minn: 3, maxn: 3 }), ['#wh', 'whe', 'her', 'ere', 're#', '#where#']);
  const g = wordNgrams('where');
  assert.equal(g.length, 5 + 4 + 3 + 2 + 1); // 3-grams..6-grams of a 7-char string, then the word
  assert.equal(g[g.length - 1], '#where#');
  assert.ok(g.includes('where#') && g.includes('#wher'));
  // code points, not UTF-16 units or bytes
  assert.deepEqual(wordNgrams('ёж', { minn: 3, maxn: 3 }), ['#ёж', 'ёж#', '#ёж#']);
  // a short word whose whole form is also an n-gram appears once
  assert.deepEqual(wordNgrams('a'), ['#a#']);
  assert.deepEqual(wordNgrams('a', { word: false }), ['#a#']);
  assert.deepEqual(wordNgrams('ab', { word: false, minn: 3, maxn: 3 }), ['#ab', 'ab#']);
  assert.throws(() => wordNgrams('x', { minn: 4, maxn: 3 }), /maxn/);
});

test('ids are hashes modulo the bucket count; a text is one bag of all its words', () => {
  const ids = wordNgramIds('Москва', { buckets: 1000 });
  assert.equal(ids.length, wordNgrams('Москва').length);
  assert.ok(ids.every((i) => i >= 0 && i < 1000));
  assert.equal(ids[ids.length - 1], fnv1a('#Москва#') % 1000);
  assert.deepEqual(tokenizeWords("Die Katze's Haus, 2019!"), ["die", "katze's", 'haus', '2019']);
  const b = textBags(['Ein Haus', '', 'дом'], { buckets: 512 });
  assert.deepEqual(Array.from(b.offsets), [0, wordNgrams('ein').length + wordNgrams('haus').length, wordNgrams('ein').length + wordNgrams('haus').length]);
  assert.equal(b.ids.length, b.offsets[2] + wordNgrams('дом').length);
});

test('collision statistics: fewer buckets, more collisions; close to the uniform-hash expectation', () => {
  const text = 'the quick brown fox jumps over the lazy dog while Москва стоит на реке und der Hund schläft '.repeat(3) +
    Array.from({ length: 300 }, (_, i) => `word${i} слово${i * 7}`).join(' ');
  const small = collisionStats(text, { buckets: 256 }), big = collisionStats(text, { buckets: 1 << 20 });
  assert.equal(small.ngrams, big.ngrams);
  assert.ok(small.ngrams > 1000);
  assert.ok(small.collisionRate > 0.9, `256 buckets for ${small.ngrams} n-grams: nearly all collide (${small.collisionRate})`);
  assert.ok(big.collisionRate < 0.01, `2^20 buckets: few collide (${big.collisionRate})`);
  const mid = collisionStats(text, { buckets: 4096 });
  assert.ok(Math.abs(mid.collisionRate - mid.expectedRate) < 0.05, `FNV-1a behaves like a uniform hash: ${mid.collisionRate} vs ${mid.expectedRate}`);
  assert.ok(mid.usedBuckets <= 4096 && mid.usedBuckets > 0);
  assert.ok(mid.ngramsPerWord.min >= 1 && mid.ngramsPerWord.max > mid.ngramsPerWord.min);
});

test('FNV-1a hashes exactly the UTF-8 bytes TextEncoder gives (BMP, astral, lone surrogates)', () => {
  const enc = new TextEncoder();
  for (const s of ['#abc#', 'ёжик', 'Straße', '日本語', '😀x', 'a\ud800b', '\udc00']) {
    let h = 0x811c9dc5;
    for (const b of enc.encode(s)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
    assert.equal(fnv1a(s), h, JSON.stringify(s));
  }
});

test('rnnkit ngrams --stats --data FILE --buckets N prints the collision rate; rnnkit ngrams WORD lists n-grams', async () => {
  const { spawnSync } = await import('node:child_process');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { dirname, join } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
  const file = join(mkdtempSync(join(tmpdir(), 'rnnkit-ngrams-')), 'corpus.txt');
  const text = 'Москва — столица России. Berlin ist die Hauptstadt Deutschlands. London is the capital of England.\n'.repeat(4);
  writeFileSync(file, text);
  const run = (...args: string[]) => spawnSync(process.execPath, [main, 'ngrams', ...args], { encoding: 'utf8' });
  const r = run('--stats', '--data', file, '--buckets', '64', '--json');
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout), want = collisionStats(text, { buckets: 64 });
  assert.equal(s.buckets, 64);
  assert.equal(s.collisionRate, want.collisionRate);
  assert.ok(s.collisionRate > 0.5, 'a corpus with hundreds of n-grams in 64 buckets collides');
  const t = run('--stats', '--data', file);
  assert.match(t.stdout, /collision rate/);
  assert.match(t.stdout, /4194304/);
  const w = run('where', '--minn', '3', '--maxn', '3');
  assert.match(w.stdout, /where: 6 n-grams/);
  assert.match(w.stdout, /#wh:\d+ whe:\d+/);
});
