#!/usr/bin/env node
// Memory over a long-ish run: training (with validation and checkpoint saves) and sampling must not grow.
//
//   npm run build:ts && node --expose-gc scripts/rss.mjs [--train-seconds 60] [--sample-seconds 30] [--backend js|wasm|auto] [--json]
//
// Samples RSS, V8 heap and external/ArrayBuffer memory about once a second (after a GC when --expose-gc is
// given), then compares the steady state (after the first 25% of each phase, the warm-up) with the end:
// growth in MB and a least-squares slope in MB per minute (reported; noisy on short runs). Exit status 1 if
// a phase grows by more than max(16 MB, 10%) after its warm-up.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => pathToFileURL(join(root, 'dist', 'src', p)).href;
const { createBackend } = await import(dist('backend/index.js'));
const { ByteVocab } = await import(dist('data/vocab.js'));
const { loadText, defaultDataPath, splitTrainValid } = await import(dist('data/corpus.js'));
const { Trainer } = await import(dist('train/trainer.js'));
const { sampleIds } = await import(dist('train/sample.js'));

const args = { trainSeconds: 60, sampleSeconds: 30, backend: 'auto', json: false, hidden: 256 };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--train-seconds') args.trainSeconds = Number(process.argv[++i]);
  else if (a === '--sample-seconds') args.sampleSeconds = Number(process.argv[++i]);
  else if (a === '--backend') args.backend = process.argv[++i];
  else if (a === '--hidden') args.hidden = Number(process.argv[++i]);
  else if (a === '--json') args.json = true;
  else { console.error(`rss: unknown argument '${a}'`); process.exit(2); }
}

const MB = 2 ** 20;
const gc = globalThis.gc ?? null;
function snapshot(t0, extra) {
  if (gc) gc();
  const m = process.memoryUsage();
  return { t: (performance.now() - t0) / 1000, rss: m.rss / MB, heap: m.heapUsed / MB, heapTotal: m.heapTotal / MB, external: m.external / MB, arrayBuffers: m.arrayBuffers / MB, ...extra };
}

function summarise(name, samples) {
  const steady = samples.filter((s) => s.t >= samples[samples.length - 1].t * 0.25);
  const first = steady[0], last = steady[steady.length - 1];
  const n = steady.length, mt = steady.reduce((a, s) => a + s.t, 0) / n, mr = steady.reduce((a, s) => a + s.rss, 0) / n;
  const slope = steady.reduce((a, s) => a + (s.t - mt) * (s.rss - mr), 0) / Math.max(1e-9, steady.reduce((a, s) => a + (s.t - mt) ** 2, 0)); // MB/s
  const growth = last.rss - first.rss;
  const peak = Math.max(...samples.map((s) => s.rss));
  const flat = growth <= Math.max(16, 0.1 * first.rss);
  return { phase: name, samples: samples.length, seconds: last.t, rssStartMB: samples[0].rss, rssSteadyStartMB: first.rss, rssEndMB: last.rss, rssPeakMB: peak,
    growthMB: growth, slopeMBperMin: slope * 60, heapStartMB: first.heap, heapEndMB: last.heap, heapTotalStartMB: first.heapTotal, heapTotalEndMB: last.heapTotal, arrayBuffersStartMB: first.arrayBuffers, arrayBuffersEndMB: last.arrayBuffers, flat };
}

const be = await createBackend({ backend: args.backend });
const text = (await loadText(defaultDataPath(), 'raw')).subarray(0, 2_000_000);
const { train, valid } = splitTrainValid(text, 0.005);
const vocab = new ByteVocab();
const dir = mkdtempSync(join(tmpdir(), 'rnnkit-rss-'));
const log = (s) => { if (!args.json) console.log(s); };
log(`rnnkit rss: backend ${be.name} (${be.threads} thread${be.threads > 1 ? 's' : ''}), LSTM 1x${args.hidden}, batch 32, bptt 64; ${gc ? 'GC before each sample' : 'no --expose-gc: samples without forcing GC'}`);

// ---- training: Trainer.run with validation every 10 s and a checkpoint save at each (best + last) ----
const trainer = new Trainer(be, { cell: 'lstm', vocabSize: 256, embedding: 64, hidden: args.hidden, layers: 1, dropout: 0.1 }, vocab,
  vocab.encode(train), vocab.encode(valid), { batch: 32, bptt: 64, lr: 2e-3, clip: 5, optimizer: 'adam', minutes: args.trainSeconds / 60,
    epochs: 0, maxSteps: 0, evalSeconds: 10, seed: 1, out: join(dir, 'rss.safetensors') });
const trainSamples = [];
let t0 = performance.now(), validations = 0;
trainSamples.push(snapshot(t0, { step: 0 }));
const timer = setInterval(() => {
  const s = snapshot(t0, { step: trainer.state.step });
  trainSamples.push(s);
  log(`train  ${s.t.toFixed(0).padStart(4)} s  step ${String(s.step).padStart(6)}  rss ${s.rss.toFixed(1)} MB  heap ${s.heap.toFixed(1)}/${s.heapTotal.toFixed(1)} MB  arrayBuffers ${s.arrayBuffers.toFixed(1)} MB`);
}, 1000);
await trainer.run({ validated() { validations++; } });
clearInterval(timer);
trainSamples.push(snapshot(t0, { step: trainer.state.step }));

// ---- sampling: one long stream at batch 1 ----
const sampleSamples = [];
t0 = performance.now();
let tokens = 0, nextLog = 0;
sampleSamples.push(snapshot(t0, { tokens: 0 }));
for (const _ of sampleIds(trainer.model, { prime: vocab.encode('\n'), length: 1e12, temperature: 0.8, seed: 1 })) {
  tokens++;
  if ((tokens & 255) !== 0) continue;
  const t = (performance.now() - t0) / 1000;
  if (t >= nextLog) {
    nextLog = t + 1;
    const s = snapshot(t0, { tokens });
    sampleSamples.push(s);
    log(`sample ${s.t.toFixed(0).padStart(4)} s  tokens ${String(tokens).padStart(7)}  rss ${s.rss.toFixed(1)} MB  heap ${s.heap.toFixed(1)}/${s.heapTotal.toFixed(1)} MB  arrayBuffers ${s.arrayBuffers.toFixed(1)} MB`);
  }
  if (t >= args.sampleSeconds) break;
}
sampleSamples.push(snapshot(t0, { tokens }));
be.dispose();
rmSync(dir, { recursive: true, force: true });

const result = {
  backend: be.name, threads: be.threads, gc: !!gc,
  train: { ...summarise('train', trainSamples), steps: trainer.state.step, validations },
  sample: { ...summarise('sample', sampleSamples), tokens },
};
const ok = result.train.flat && result.sample.flat;
if (args.json) console.log(JSON.stringify({ ...result, ok }));
else {
  for (const p of [result.train, result.sample]) {
    console.log(`\n${p.phase}: ${p.seconds.toFixed(0)} s, ${p.phase === 'train' ? `${result.train.steps} steps, ${result.train.validations} validations + checkpoint saves` : `${result.sample.tokens} tokens`}`);
    console.log(`  RSS ${p.rssStartMB.toFixed(1)} MB at start, ${p.rssSteadyStartMB.toFixed(1)} MB after warm-up, ${p.rssEndMB.toFixed(1)} MB at the end (peak ${p.rssPeakMB.toFixed(1)} MB)`);
    console.log(`  growth after warm-up ${p.growthMB >= 0 ? '+' : ''}${p.growthMB.toFixed(1)} MB, slope ${p.slopeMBperMin >= 0 ? '+' : ''}${p.slopeMBperMin.toFixed(2)} MB/min; heap used ${p.heapStartMB.toFixed(1)} -> ${p.heapEndMB.toFixed(1)} MB (committed ${p.heapTotalStartMB.toFixed(1)} -> ${p.heapTotalEndMB.toFixed(1)} MB), ArrayBuffers ${p.arrayBuffersStartMB.toFixed(1)} -> ${p.arrayBuffersEndMB.toFixed(1)} MB: ${p.flat ? 'flat' : 'GROWING'}`);
  }
  console.log(`\n${ok ? 'OK: memory is flat in training and sampling' : 'NOT OK: memory grows'}`);
}
process.exit(ok ? 0 : 1);
