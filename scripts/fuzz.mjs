#!/usr/bin/env node
// Fuzzing of rnnkit's input readers with hostile bytes: random bytes, truncations, bit flips, splices, huge
// declared sizes, and structure-aware mutations (safetensors headers, checkpoint metadata, MediaWiki XML, gzip).
//
//   npm run build:ts && node scripts/fuzz.mjs [--cases 10000] [--seed 1] [--targets safetensors,checkpoint,text,pages] [--json]
//
// Targets (each gets --cases cases):
//   safetensors  decodeSafetensors(bytes) on mutated checkpoints (in memory)
//   checkpoint   loadCheckpoint(file) on mutated rnnkit and PyTorch-style checkpoints (written to a temp folder)
//   text         loadText(file, 'raw' | 'clean') on random/non-UTF-8 bytes, gzip, mutated MediaWiki dumps
//   pages        readPages(chunks) on mutated MediaWiki XML cut into random chunks
// Every case must end in a result or an Error whose message is clear: non-empty, naming the file (for file
// readers), and not an internal TypeError/RangeError/ReferenceError. Anything else is counted as a crash, as
// is a worker that dies (e.g. out of memory). A case that takes > 5 s is a hang; peak RSS is reported (the
// inputs are <= 64 KB, so growth past 1 GB counts as unbounded allocation). Prints counts by error kind.
// Exit status: 0 when there were no crashes, hangs or unbounded allocations.
//
// The cases run in a worker thread; the main thread watches a shared progress counter, so that a case that
// hangs (a synchronous infinite loop) is reported with its target, index and seed instead of hanging the script.

import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => pathToFileURL(join(root, 'dist', 'src', p)).href;
const TARGETS = ['safetensors', 'checkpoint', 'text', 'pages'];
const HANG_MS = 5000; // a case slower than this counts as a hang (a real hang never ends; the watchdog stops it at 5x)
const RSS_LIMIT = 1024 * 1024 * 1024;

function parseArgs(argv) {
  const o = { cases: 10000, seed: 1, targets: TARGETS, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--cases') o.cases = Number(argv[++i]);
    else if (a === '--seed') o.seed = Number(argv[++i]);
    else if (a === '--targets') o.targets = argv[++i].split(',');
    else if (a === '--json') o.json = true;
    else if (a === '--help' || a === '-h') { console.log('usage: node scripts/fuzz.mjs [--cases N] [--seed S] [--targets safetensors,checkpoint,text,pages] [--json]'); process.exit(0); }
    else throw new Error(`fuzz: unknown argument '${a}'`);
  }
  if (!Number.isInteger(o.cases) || o.cases < 1) throw new Error('fuzz: --cases must be a positive integer');
  for (const t of o.targets) if (!TARGETS.includes(t)) throw new Error(`fuzz: unknown target '${t}' (expected ${TARGETS.join(', ')})`);
  return o;
}

// ---------------------------------------------------------------------------------------------------------
// Main thread: run the worker, watch for hangs and memory.

/** Run the fuzzer; resolves to the report object (also used by test/fuzz.test.ts through the CLI). */
export async function runFuzz(opts) {
  const progress = new Int32Array(new SharedArrayBuffer(8)); // [target index, case index]
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { ...opts, progress } });
  let report = null, failure = null, peakRss = process.memoryUsage().rss;
  let last = [-1, -1], lastChange = Date.now();
  const done = new Promise((resolve) => {
    worker.on('message', (m) => { report = m; });
    worker.on('error', (e) => { failure = `worker crashed: ${e?.stack ?? e}`; });
    worker.on('exit', (code) => resolve(code));
  });
  const timer = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    const now = [progress[0], progress[1]];
    if (now[0] !== last[0] || now[1] !== last[1]) { last = now; lastChange = Date.now(); return; }
    if (Date.now() - lastChange > 5 * HANG_MS && !report) {
      failure = `hang: target ${opts.targets[now[0]]} case ${now[1]} (seed ${opts.seed}) made no progress for ${5 * HANG_MS} ms`;
      worker.terminate();
    }
    if (peakRss > RSS_LIMIT && !report) {
      failure = `unbounded allocation: RSS ${(peakRss / 2 ** 20).toFixed(0)} MB at target ${opts.targets[now[0]]} case ${now[1]}`;
      worker.terminate();
    }
  }, 50);
  const code = await done;
  clearInterval(timer);
  if (!report) {
    report = { targets: {}, failure: failure ?? `worker exited with code ${code} at target ${opts.targets[progress[0]]} case ${progress[1]} (seed ${opts.seed})` };
  } else if (failure) report.failure = failure;
  report.peakRssMB = Math.round(peakRss / 2 ** 20);
  report.seed = opts.seed;
  report.ok = !report.failure && Object.values(report.targets).every((t) => t.crashes === 0 && t.hangs === 0) && peakRss <= RSS_LIMIT;
  return report;
}

function printReport(r) {
  const lines = [`rnnkit fuzz, seed ${r.seed}: peak RSS ${r.peakRssMB} MB`];
  for (const [name, t] of Object.entries(r.targets)) {
    lines.push(`\n${name}: ${t.cases} cases in ${(t.ms / 1000).toFixed(1)} s (slowest case ${t.slowestMs.toFixed(1)} ms): ` +
      `${t.loaded} read without error, ${t.errors} clear errors, ${t.crashes} crashes, ${t.hangs} hangs`);
    lines.push(`  by mutation: ${Object.entries(t.byMutation).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    lines.push('  errors by kind:');
    for (const [k, v] of Object.entries(t.byKind).sort((a, b) => b[1] - a[1])) lines.push(`    ${String(v).padStart(6)}  ${k}`);
    for (const c of t.crashList) lines.push(`  CRASH ${c}`);
  }
  if (r.failure) lines.push(`\nFAILURE: ${r.failure}`);
  lines.push(`\n${r.ok ? 'OK: no crashes, no hangs, no unbounded allocation' : 'NOT OK'}`);
  return lines.join('\n');
}

if (isMainThread && process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const opts = parseArgs(process.argv.slice(2));
  const report = await runFuzz(opts);
  console.log(opts.json ? JSON.stringify(report) : printReport(report));
  process.exit(report.ok ? 0 : 1);
}

// ---------------------------------------------------------------------------------------------------------
// Worker: the cases.

if (!isMainThread) {
  const { Rng } = await import(dist('util/rng.js'));
  const { JsBackend } = await import(dist('backend/js.js'));
  const { ByteVocab, CharVocab } = await import(dist('data/vocab.js'));
  const { CharLM } = await import(dist('models/charlm.js'));
  const { decodeSafetensors, encodeSafetensors } = await import(dist('io/safetensors.js'));
  const { loadCheckpoint, saveCheckpoint } = await import(dist('train/checkpoint.js'));
  const { encodeTorchCheckpoint } = await import(dist('io/torch.js'));
  const { Adam } = await import(dist('optim/optim.js'));
  const { loadText } = await import(dist('data/corpus.js'));
  const { readPages } = await import(dist('data/wikidump.js'));

  const { cases, seed, targets, progress } = workerData;
  const rng = new Rng(seed);
  const be = new JsBackend('float32');
  const dir = mkdtempSync(join(tmpdir(), 'rnnkit-fuzz-'));

  // ---- base inputs ----
  const charVocab = CharVocab.fromText('hello, wörld — мир ✓');
  const m1 = new CharLM(be, { cell: 'lstm', vocabSize: charVocab.size, embedding: 3, hidden: 4, layers: 2, dropout: 0.1 }, 1);
  const opt = new Adam(be, m1.parameters());
  m1.resetState(2);
  saveCheckpoint(join(dir, 'base1.safetensors'), m1, charVocab, { step: 3, epoch: 0, position: 21, bestBpc: 2.5, seconds: 1, chars: 100, rng: m1.dropoutRngState }, opt);
  const m2 = new CharLM(be, { cell: 'gru', vocabSize: 256, embedding: 2, hidden: 3, layers: 1, dropout: 0 }, 2);
  const bases = [readFileSync(join(dir, 'base1.safetensors')), encodeTorchCheckpoint(m2, new ByteVocab())];

  const XML_HEAD = '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.3/" version="0.3" xml:lang="en">\n  <siteinfo>\n    <sitename>Wikipedia</sitename>\n    <namespaces>\n      <namespace key="0" />\n      <namespace key="1">Talk</namespace>\n    </namespaces>\n  </siteinfo>\n';
  const page = (id, title, text, extra = '') => `  <page>\n    <title>${title}</title>\n    <id>${id}</id>\n${extra}    <revision>\n      <id>${id + 1000}</id>\n      <text xml:space="preserve">${text}</text>\n    </revision>\n  </page>\n`;
  const baseXml = Buffer.concat([Buffer.from(XML_HEAD
    + page(1, 'Anarchism', "'''Anarchism''' is a [[political philosophy]] {{citation needed}} that &lt;b&gt;advocates&lt;/b&gt; [[self-governance|self-governed]] societies.\n\n== History ==\n{| class=&quot;wikitable&quot;\n| a || b\n|}\nText with &amp;amp; entities &#x263A; and a ref&lt;ref&gt;Note&lt;/ref&gt;.\n[[Category:Politics]]")
    + page(2, 'Talk:Anarchism', 'talk page text')
    + page(3, 'AccessibleComputing', '#REDIRECT [[Computer accessibility]]', '    <redirect />\n')
    + page(4, 'Caf\u00e9 \u043c\u0438\u0440', 'Unicode: na\u00efve \u00fcber \u2014 \u043c\u0438\u0440 \u{1F600}. '), 'utf8'),
  Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from(page(5, 'Bytes', 'after bad bytes') + '</mediawiki>\n', 'utf8')]);
  const referencePages = [];
  for await (const p of readPages((async function* () { yield baseXml; })())) referencePages.push(p);

  // ---- generic byte mutators ----
  const randInt = (n) => rng.int(n);
  const randBytes = (n) => {
    const b = Buffer.alloc(n);
    const alphabet = rng.next() < 0.5 ? null : Buffer.from('<>/="&;#[]{}|\'\n pagetitlrxmsi0123456789\u00ff', 'latin1');
    for (let i = 0; i < n; i++) b[i] = alphabet ? alphabet[randInt(alphabet.length)] : randInt(256);
    return b;
  };
  const truncate = (b) => b.subarray(0, randInt(b.length));
  const flipBits = (b, region = b.length) => {
    const c = Buffer.from(b);
    const n = 1 + randInt(16);
    for (let i = 0; i < n; i++) { const p = randInt(Math.max(1, Math.min(region, c.length))); if (c.length) c[p] ^= 1 << randInt(8); }
    return c;
  };
  const splice = (b) => {
    const a = randInt(b.length + 1), z = a + randInt(Math.min(256, b.length - a + 1));
    const k = randInt(3);
    if (k === 0) return Buffer.concat([b.subarray(0, a), b.subarray(z)]); // delete a range
    if (k === 1) return Buffer.concat([b.subarray(0, a), randBytes(randInt(64)), b.subarray(a)]); // insert junk
    return Buffer.concat([b.subarray(0, z), b.subarray(a, z), b.subarray(z)]); // duplicate a range
  };
  const hugeNumber = () => [2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e300, -1, -(2 ** 31), 0.5, 1e6, 1e9, Number.MAX_SAFE_INTEGER][randInt(11)];
  const junkValue = () => {
    const k = randInt(9);
    return [hugeNumber(), 'x', null, true, [], {}, [hugeNumber(), hugeNumber()], { a: 1 }, '9'.repeat(400)][k];
  };

  // ---- safetensors-aware mutators ----
  const headerOf = (b) => { const n = Number(b.readBigUInt64LE(0)); return { n, json: JSON.parse(b.subarray(8, 8 + n).toString('utf8')), data: b.subarray(8 + n) }; };
  const withHeader = (json, data, lie = 0) => {
    const h = Buffer.from(JSON.stringify(json), 'utf8');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length + lie));
    return Buffer.concat([len, h, data]);
  };
  const hugeHeaderLength = (b) => {
    const c = Buffer.from(b);
    const v = [2n ** 64n - 1n, 2n ** 63n, 2n ** 32n, BigInt(100 * 1024 * 1024 + 1), BigInt(c.length - 7), BigInt(c.length), 0n, 1n, BigInt(randInt(2 ** 30))][randInt(9)];
    c.writeBigUInt64LE(v, 0);
    return c;
  };
  const mutateHeader = (b) => {
    const { json, data } = headerOf(b);
    const names = Object.keys(json).filter((k) => k !== '__metadata__');
    const name = names[randInt(names.length)];
    const e = json[name];
    const k = randInt(14);
    if (k === 0) e.shape = e.shape.map(() => hugeNumber());
    else if (k === 1) e.shape = [hugeNumber(), hugeNumber(), hugeNumber()];
    else if (k === 2) e.data_offsets = [hugeNumber(), hugeNumber()];
    else if (k === 3) e.data_offsets = [e.data_offsets[1], e.data_offsets[0]];
    else if (k === 4) { const o = json[names[randInt(names.length)]].data_offsets; e.data_offsets = [...o]; e.shape = json[names[randInt(names.length)]].shape; } // overlap
    else if (k === 5) e.dtype = ['F16', 'BF16', 'F64', 'I64', 'U8', 'BOOL', 'F8', 'toString', '__proto__', 7][randInt(10)];
    else if (k === 6) json[name] = junkValue();
    else if (k === 7) delete json[name];
    else if (k === 8) json.__metadata__ = junkValue();
    else {
      const meta = json.__metadata__ ?? (json.__metadata__ = {});
      const key = ['config', 'vocab_json', 'train_state', 'rnn_type', 'vocab', 'optimizer_step', '__proto__', 'format'][randInt(8)];
      if (k === 9) meta[key] = junkValue();
      else if (k === 10) meta[key] = JSON.stringify(junkValue());
      else if (k === 11) {
        // a config asking for a huge model
        const c = meta.config ? JSON.parse(meta.config) : { cell: 'lstm', vocabSize: 256, embedding: 4, hidden: 4, layers: 1, dropout: 0 };
        c[['vocabSize', 'embedding', 'hidden', 'layers', 'cell', 'dropout'][randInt(6)]] = junkValue();
        meta.config = JSON.stringify(c);
      } else if (k === 12) {
        const t = meta.train_state ? JSON.parse(meta.train_state) : {};
        t[['step', 'epoch', 'position', 'rng', 'bestBpc', 'seconds'][randInt(6)]] = junkValue();
        meta.train_state = JSON.stringify(t);
      } else {
        meta.vocab_json = JSON.stringify(rng.next() < 0.5 ? { kind: 'chars', chars: [junkValue(), 'a', 'a'], unk: junkValue(), size: hugeNumber() } : { kind: junkValue() });
      }
    }
    return withHeader(json, data, rng.next() < 0.1 ? randInt(16) - 8 : 0);
  };

  function checkpointCase() {
    const base = bases[randInt(bases.length)];
    const k = randInt(8);
    const hlen = Number(base.readBigUInt64LE(0));
    switch (k) {
      case 0: return ['random bytes', randBytes(randInt(rng.next() < 0.5 ? 16 : 4096))];
      case 1: return ['truncation', truncate(base)];
      case 2: return ['bit flips (header)', flipBits(base, 8 + hlen)];
      case 3: return ['bit flips (anywhere)', flipBits(base)];
      case 4: return ['splice', splice(base)];
      case 5: return ['huge declared header size', hugeHeaderLength(base)];
      default: return ['header field mutation', mutateHeader(base)];
    }
  }

  // ---- text / XML mutators ----
  function xmlMutation(b) {
    const s = b.toString('latin1');
    const k = randInt(7);
    if (k === 0) return splice(b);
    if (k === 1) return flipBits(b);
    if (k === 2) return truncate(b);
    if (k === 3) return Buffer.from(s.replace(/<\/page>/g, () => (rng.next() < 0.5 ? '' : '</page>')), 'latin1'); // unclosed pages
    if (k === 4) return Buffer.from(s.replace(/<(\/?)(text|title|id|ns|revision|siteinfo)/g, (m) => (rng.next() < 0.3 ? '<' : m)), 'latin1');
    if (k === 5) { const p = randInt(s.length); return Buffer.from(s.slice(0, p) + '<page>'.repeat(1 + randInt(50)) + s.slice(p), 'latin1'); }
    return Buffer.from(s.replace(/&[a-z]+;/g, () => ['&#xFFFFFFFF;', '&#99999999999;', '&#0;', '&unknown;', '&#x;', '&'][randInt(6)]), 'latin1');
  }

  function textCase() {
    const k = randInt(9);
    switch (k) {
      case 0: return ['random bytes (raw)', randBytes(randInt(2048)), 'raw', false];
      case 1: return ['empty file', Buffer.alloc(0), ['raw', 'clean'][randInt(2)], false];
      case 2: return ['gzip of random bytes (raw)', gzipSync(randBytes(1 + randInt(2048))), 'raw', true];
      case 3: return ['truncated gzip', truncate(gzipSync(baseXml)), ['raw', 'clean'][randInt(2)], true];
      case 4: return ['bit-flipped gzip', flipBits(gzipSync(baseXml)), ['raw', 'clean'][randInt(2)], true];
      case 5: return ['gzip with a lying size trailer', (() => { const g = gzipSync(baseXml); g.writeUInt32LE(randInt(2 ** 32), g.length - 4); return g; })(), 'raw', true];
      case 6: if (rng.next() < 0.02) return ['gzip bomb (24 KiB -> 24 MiB)', gzipSync(Buffer.alloc(24 << 20)), 'raw', true];
        return ['other compressor magic', Buffer.concat([[Buffer.from('BZh9'), Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]), Buffer.from([0x28, 0xb5, 0x2f, 0xfd])][randInt(3)], randBytes(randInt(100))]), 'raw', false];
      default: return ['mutated MediaWiki dump (clean)', xmlMutation(baseXml), 'clean', rng.next() < 0.3];
    }
  }

  /** [mutation, chunks or null, file bytes or null, valid] */
  function pagesCase() {
    if (rng.next() < 0.005) {
      // a huge page without </page> (8 MiB in 64 KiB chunks): must stay linear in time
      const big = Buffer.alloc(1 << 16, 0x61);
      return ['huge unclosed page (8 MiB)', [Buffer.from(XML_HEAD + '  <page>\n    <title>Big</title>\n    <text>'), ...Array(128).fill(big)], null, false];
    }
    const k = randInt(6);
    const bytes = k === 0 ? baseXml : k === 1 ? randBytes(randInt(4096)) : xmlMutation(baseXml);
    // cut into random chunks (1..300 bytes)
    const chunks = [];
    for (let i = 0; i < bytes.length;) { const n = 1 + randInt(rng.next() < 0.5 ? 8 : 300); chunks.push(bytes.subarray(i, i + n)); i += n; }
    if (k === 3) return ['mutated dump (gzip stream)', [gzipSync(bytes)], null, false];
    if (k === 4) return ['corrupt gzip file', null, rng.next() < 0.5 ? truncate(gzipSync(bytes)) : flipBits(gzipSync(bytes)), false];
    if (k === 5) return ['mutated dump file', null, bytes, false];
    return [k === 0 ? 'valid dump, random chunking' : k === 1 ? 'random bytes' : 'mutated dump', chunks, null, k === 0];
  }

  // ---- classification ----
  const KINDS = [
    [/too short/, 'file too short for a header'],
    [/exceeds the .*-byte limit/, 'declared header size over the limit'],
    [/runs past the end of the file/, 'declared header size past the end of the file'],
    [/header is not valid JSON|header is not a JSON object/, 'header is not a JSON object'],
    [/__metadata__ is not an object|__metadata__\.\S+ is not a string/, 'bad __metadata__'],
    [/unknown dtype|only floating-point/, 'unsupported dtype'],
    [/invalid shape/, 'invalid shape'],
    [/invalid data_offsets/, 'invalid data_offsets'],
    [/outside the data section/, 'data_offsets outside the data'],
    [/but its data_offsets span/, 'shape does not match data_offsets'],
    [/overlap/, 'overlapping tensors'],
    [/belong to no tensor|bytes after the last tensor/, 'data section not fully indexed (hole or trailing bytes)'],
    [/entry is not an object/, 'tensor entry is not an object'],
    [/__metadata__\.config/, 'config does not describe a model'],
    [/__metadata__\.vocab_json/, 'bad vocab_json'],
    [/__metadata__\.train_state/, 'bad train_state'],
    [/optimizer_step/, 'bad optimizer_step'],
    [/not an rnnkit or word_language_model/, 'no config or rnn_type'],
    [/unknown rnn_type/, 'unknown rnn_type'],
    [/missing tensor/, 'missing tensor'],
    [/the model needs/, 'tensor shape does not match the model'],
    [/must be matrices|empty model/, 'PyTorch shapes do not make a model'],
    [/vocabulary has \d+ entries/, 'vocabulary size does not match the model'],
    [/non-finite value/, 'NaN or infinite weights'],
    [/layers, which need at least/, 'more layers than the file has tensors'],
    [/needs a vocab_json/, 'vocab kind without vocab_json'],
    [/cannot build the model/, 'cannot build the model'],
    [/is empty/, 'empty file'],
    [/not valid gzip/, 'not valid gzip'],
    [/-compressed, which rnnkit cannot read/, 'bzip2/xz/zstd (unsupported, with a hint)'],
    [/no article text after cleaning/, 'no article text after cleaning'],
  ];
  const INTERNAL = new Set(['TypeError', 'RangeError', 'ReferenceError', 'SyntaxError', 'EvalError', 'URIError']);
  /** The error kind, or null if the error is not a clear one. */
  function classify(e, file) {
    if (!(e instanceof Error)) return { crash: `threw a non-Error: ${String(e).slice(0, 200)}` };
    if (!e.message) return { crash: `${e.name} without a message` };
    if (file && !e.message.includes(file)) return { crash: `message does not name the file: ${e.name}: ${e.message.slice(0, 200)}` };
    if (INTERNAL.has(e.name) || INTERNAL.has(e.constructor?.name)) return { crash: `internal ${e.name}: ${e.message.slice(0, 200)}` };
    if (typeof e.code === 'string' && /^(Z_|ERR_)/.test(e.code)) return { crash: `raw library error without context: ${e.code}: ${e.message.slice(0, 200)}` };
    for (const [re, kind] of KINDS) if (re.test(e.message)) return { kind };
    return { kind: `other: ${e.message.replace(file ?? '\0', '<file>').replace(/\d+/g, 'N').slice(0, 80)}` };
  }

  // ---- the loop ----
  const report = { targets: {} };
  for (let ti = 0; ti < targets.length; ti++) {
    const target = targets[ti];
    const t = { cases: 0, loaded: 0, errors: 0, crashes: 0, hangs: 0, ms: 0, slowestMs: 0, byKind: {}, byMutation: {}, crashList: [] };
    report.targets[target] = t;
    const t0 = performance.now();
    for (let i = 0; i < cases; i++) {
      Atomics.store(progress, 0, ti);
      Atomics.store(progress, 1, i);
      let mutation = '', file = null, ok = false;
      const c0 = performance.now();
      try {
        if (target === 'safetensors') {
          const [m, bytes] = checkpointCase();
          mutation = m; file = 'fuzz.safetensors';
          decodeSafetensors(bytes, file);
        } else if (target === 'checkpoint') {
          const [m, bytes] = checkpointCase();
          mutation = m; file = join(dir, `case-${i % 8}.safetensors`);
          writeFileSync(file, bytes);
          loadCheckpoint(file, be);
        } else if (target === 'text') {
          const [m, bytes, mode, gz] = textCase();
          mutation = m; file = join(dir, `case-${i % 8}${gz && rng.next() < 0.5 ? '.txt.gz' : '.txt'}`);
          writeFileSync(file, bytes);
          const out = await loadText(file, mode);
          if (mode === 'raw' && !gz && !bytes.equals(Buffer.from(out.buffer, out.byteOffset, out.byteLength))) {
            throw Object.assign(new Error('raw text is not the file\'s bytes exactly'), { name: 'MismatchError', mismatch: true });
          }
          const ids = new ByteVocab().encode(out); // any bytes, UTF-8 or not, are ids 0..255
          if (ids.length !== out.length) throw Object.assign(new Error('byte vocabulary dropped bytes'), { mismatch: true });
        } else {
          const [m, chunks, fileBytes, valid] = pagesCase();
          mutation = m; file = null;
          if (fileBytes) { file = join(dir, `case-${i % 8}.xml${m.includes('gzip') ? '.gz' : ''}`); writeFileSync(file, fileBytes); }
          const got = [];
          for await (const p of readPages(file ?? (async function* () { for (const ch of chunks) yield ch; })())) got.push(p);
          if (valid && JSON.stringify(got) !== JSON.stringify(referencePages)) {
            throw Object.assign(new Error('a valid dump cut into random chunks parsed differently'), { mismatch: true });
          }
        }
        ok = true;
      } catch (e) {
        const c = e?.mismatch ? { crash: `wrong result: ${e.message}` } : classify(e, file);
        if (c.crash) {
          t.crashes++;
          if (t.crashList.length < 20) t.crashList.push(`${target} case ${i} (${mutation}): ${c.crash}`);
        } else {
          t.errors++;
          t.byKind[c.kind] = (t.byKind[c.kind] ?? 0) + 1;
        }
      }
      const ms = performance.now() - c0;
      if (ms > HANG_MS) { t.hangs++; if (t.crashList.length < 20) t.crashList.push(`${target} case ${i} (${mutation}): took ${ms.toFixed(0)} ms`); }
      t.slowestMs = Math.max(t.slowestMs, ms);
      if (ok) t.loaded++;
      t.cases++;
      t.byMutation[mutation] = (t.byMutation[mutation] ?? 0) + 1;
    }
    t.ms = performance.now() - t0;
  }
  rmSync(dir, { recursive: true, force: true });
  parentPort.postMessage(report);
}
