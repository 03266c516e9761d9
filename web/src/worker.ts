// The playground's model worker: all computation runs here, on rnnkit's wasm backend (one thread) or, when
// the browser has WebGPU and the user picks it, on the webgpu backend, so that the page stays responsive.
// It holds the "current" model (sampling, surprisal) and, while or after training, the model being trained.
//
// The webgpu backend is deferred (src/backend/webgpu.ts): kernels are recorded and run later, so host reads
// of a buffer first await syncHost (the surprisal view's logits, checkpoint bytes), losses come from the
// device (Trainer.stepAsync, evaluateStream) and sampling runs on the device (sampleIdsAsync). On wasm
// these are no-ops. Switching the backend moves the models across through their checkpoint bytes.

import { installBufferShim } from './buffer-shim.js';
import type { Analysis, BackendChoice, ModelInfo, Reply, Request, TrainConfig, TrainPoint, WebGPUAvailability } from './protocol.js';
import type { Backend } from '../../src/backend/backend.js';
import { deferredLoss, syncHost } from '../../src/backend/sync.js';
import { createBrowserBackend } from '../../src/backend/wasm-browser.js';
import { createWebGPUBackend, type WebGPUBackend } from '../../src/backend/webgpu.js';
import { ByteVocab, type Vocab } from '../../src/data/vocab.js';
import type { CharLM } from '../../src/models/charlm.js';
import { checkpointFromBytes, checkpointToBytes, syncCheckpointBuffers } from '../../src/train/checkpoint.js';
import { result as evalResult } from '../../src/train/evaluate.js';
import { sampleIdsAsync } from '../../src/train/sample.js';
import { Trainer } from '../../src/train/trainer.js';

installBufferShim(); // encodeSafetensors (checkpoint downloads) writes into a Buffer

const post = (m: Reply, transfer: Transferable[] = []): void => (self as unknown as Worker).postMessage(m, transfer);
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

interface Loaded { model: CharLM; vocab: Vocab; info: ModelInfo }

/** The backend in use: the wasm one (or its JS fallback) or the webgpu one. */
let be: Backend | null = null;
let choice: BackendChoice = 'wasm';
let wasm: { backend: Backend; kind: string; fallbackReason: string | null } | null = null;
let gpu: WebGPUBackend | null = null;
let webgpu: WebGPUAvailability = { available: false, reason: 'not probed yet' };
let switching = false;
let current: Loaded | null = null;
let wiki: Uint8Array = new Uint8Array(0);

// ---------------------------------------------------------------- backends

/** Whether this worker can run WebGPU: navigator.gpu and an adapter (the device is made when chosen). */
async function probeWebGPU(): Promise<WebGPUAvailability> {
  const gpuApi = (self.navigator as unknown as { gpu?: GPU }).gpu;
  if (!gpuApi) {
    return { available: false, reason: self.isSecureContext === false
      ? 'WebGPU needs a secure context (https or localhost)' : 'this browser has no WebGPU (no navigator.gpu)' };
  }
  try {
    const a = (await gpuApi.requestAdapter({ powerPreference: 'high-performance' })) ?? (await gpuApi.requestAdapter());
    if (!a) return { available: false, reason: 'no WebGPU adapter (WebGPU is disabled or there is no usable GPU)' };
    return { available: true, adapter: describeAdapter(a) };
  } catch (e) {
    return { available: false, reason: `requestAdapter failed: ${(e as Error).message}` };
  }
}

function describeAdapter(a: GPUAdapter): string {
  const info = a.info as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined;
  const name = info?.description || [info?.vendor, info?.architecture, info?.device].filter(Boolean).join(' ') || 'unnamed adapter';
  const fallback = info?.isFallbackAdapter ?? (a as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  return fallback ? `${name} (fallback adapter)` : name;
}

function backendReply(): Reply {
  return {
    type: 'backend', choice,
    backend: choice === 'webgpu' ? 'webgpu' : wasm!.kind,
    detail: choice === 'webgpu' ? (webgpu.available ? webgpu.adapter : gpu!.adapterInfo) : (wasm!.fallbackReason ?? 'WebAssembly kernels'),
    model: current?.info ?? null,
  };
}

/** The same model on another backend (through its checkpoint bytes: weights, vocabulary, configuration). */
async function moveModel(l: Loaded, to: Backend): Promise<Loaded> {
  await syncCheckpointBuffers(l.model);
  const ck = checkpointFromBytes(checkpointToBytes(l.model, l.vocab), l.info.name, to);
  return { model: ck.model, vocab: ck.vocab, info: l.info };
}

async function setBackend(want: BackendChoice): Promise<void> {
  if (training || switching) throw new Error(training ? 'stop training before switching the backend' : 'the backend is being switched');
  switching = true;
  try {
    await exclusive(async () => {
      let target: Backend;
      if (want === 'webgpu') {
        if (!webgpu.available) throw new Error(`WebGPU is not available here: ${webgpu.reason}`);
        gpu ??= await createWebGPUBackend();
        target = gpu;
      } else {
        target = wasm!.backend;
      }
      if (target !== be) {
        const moved = new Map<Loaded, Loaded>(); // current and trained may be one model
        const move = async (l: Loaded | null): Promise<Loaded | null> => {
          if (!l) return null;
          if (!moved.has(l)) moved.set(l, await moveModel(l, target));
          return moved.get(l)!;
        };
        const c = await move(current), t = await move(trained);
        current = c; trained = t; be = target; choice = want;
      }
      post(backendReply());
    });
  } finally {
    switching = false;
  }
}

// ---------------------------------------------------------------- models

function infoOf(name: string, model: CharLM, vocab: Vocab, steps: number | null, bestBpc: number | null): ModelInfo {
  let params = 0;
  for (const p of model.params.values()) params += p.size;
  const c = model.config;
  return { name, cell: c.cell, hidden: c.hidden, layers: c.layers, embedding: c.embedding, vocab: vocab.kind, vocabSize: vocab.size, params, steps, bestBpc };
}

function load(bytes: Uint8Array, name: string): Loaded {
  const ck = checkpointFromBytes(bytes, name, be!);
  const info = infoOf(name, ck.model, ck.vocab, ck.trainState?.step ?? null, ck.trainState?.bestBpc ?? null);
  return { model: ck.model, vocab: ck.vocab, info };
}

/** Operations on the current model run one after another (each resets and drives its state). */
let queue: Promise<unknown> = Promise.resolve();
function exclusive<T>(f: () => Promise<T> | T): Promise<T> {
  const r = queue.then(f, f);
  queue = r.catch(() => undefined);
  return r;
}

// ---------------------------------------------------------------- sampling

let sampleGen = 0;

async function sample(m: Extract<Request, { type: 'sample' }>): Promise<void> {
  const gen = ++sampleGen;
  await exclusive(async () => {
    if (!current) throw new Error('no model loaded');
    const { model, vocab } = current;
    const t0 = performance.now();
    const prime = vocab.encode(m.prime.length > 0 ? m.prime : '\n');
    const decode = vocab instanceof ByteVocab ? vocab.stream() : null;
    let text = '', n = 0, lastPost = performance.now(), stopped = false;
    for await (const id of sampleIdsAsync(model, { prime, length: m.length, temperature: m.temperature, seed: m.seed })) {
      text += decode ? decode.push(id) : vocab.decode([id]);
      n++;
      const now = performance.now();
      if (now - lastPost > 40) {
        if (text) post({ type: 'sampleChunk', id: m.id, text });
        text = '';
        lastPost = now;
        await tick();
        if (gen !== sampleGen) { stopped = true; break; }
      }
    }
    if (decode) text += decode.flush();
    if (text) post({ type: 'sampleChunk', id: m.id, text });
    post({ type: 'sampleDone', id: m.id, tokens: n, seconds: (performance.now() - t0) / 1000, stopped });
  });
}

// ---------------------------------------------------------------- surprisal

const utf8Length = (cp: number): number => (cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);

function tokenText(vocab: Vocab, id: number): string {
  if (vocab instanceof ByteVocab) return id < 0x80 ? String.fromCharCode(id) : `\\x${id.toString(16).padStart(2, '0')}`;
  return vocab.decode([id]);
}

async function analyze(model: CharLM, vocab: Vocab, text: string): Promise<Analysis> {
  const t0 = performance.now();
  const ids = vocab.encode(text);
  if (ids.length < 2) throw new Error('the text needs at least 2 characters');
  const V = model.config.vocabSize, T = 256, K = 5;
  const bitsTok = new Float64Array(ids.length).fill(NaN);
  const topTok: [string, number][][] = [[]];
  const lp = new Float64Array(V);
  // One pass that is evaluateStream (the same chunks, forward and loss calls, so the same bits per character)
  // and also reads each chunk's logits for the per-character view.
  let nats = 0;
  model.resetState(1);
  for (let i = 0; i + 1 < ids.length; i += T) {
    const t = Math.min(T, ids.length - 1 - i);
    const logits = model.forward(ids.subarray(i, i + t), t, 1, false);
    nats += model.loss(ids.subarray(i + 1, i + 1 + t)) * t; // NaN on webgpu: the sum comes from the device
    await syncHost(model.be, [logits]); // deferred backends (webgpu): the logits come back from the device
    for (let r = 0; r < t; r++) {
      const o = r * V;
      let mx = -Infinity;
      for (let j = 0; j < V; j++) mx = Math.max(mx, logits[o + j]);
      let s = 0;
      for (let j = 0; j < V; j++) s += Math.exp(logits[o + j] - mx);
      const lse = mx + Math.log(s);
      for (let j = 0; j < V; j++) lp[j] = logits[o + j] - lse;
      bitsTok[i + r + 1] = -lp[ids[i + r + 1]] / Math.LN2;
      const best: number[] = [];
      for (let j = 0; j < V; j++) {
        if (best.length < K || lp[j] > lp[best[best.length - 1]]) {
          let k = Math.min(best.length, K - 1);
          best[k] = j;
          while (k > 0 && lp[best[k]] > lp[best[k - 1]]) { [best[k], best[k - 1]] = [best[k - 1], best[k]]; k--; }
        }
      }
      topTok.push(best.map((j) => [tokenText(vocab, j), Math.exp(lp[j])]));
    }
  }
  const ev = evalResult(await deferredLoss(model.be, nats), ids.length - 1);
  const chars: string[] = [], bits: number[] = [], top: [string, number][][] = [];
  let b = 0;
  for (const ch of text) {
    const L = vocab instanceof ByteVocab ? utf8Length(ch.codePointAt(0)!) : 1;
    let s = 0;
    for (let k = 0; k < L; k++) s += bitsTok[b + k];
    chars.push(ch);
    bits.push(s);
    top.push(topTok[b] ?? []);
    b += L;
  }
  return { chars, bits, top, bpc: ev.bpc, perplexity: ev.perplexity, tokens: ids.length, seconds: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------- training

let training: { trainer: Trainer; stop: boolean; vocab: Vocab } | null = null;
let trained: Loaded | null = null;

async function train(cfg: TrainConfig): Promise<void> {
  if (training) throw new Error('training is already running');
  if (switching) throw new Error('the backend is being switched');
  const vocab = new ByteVocab();
  const bytes = cfg.source === 'text' ? new TextEncoder().encode(cfg.text ?? '') : wiki;
  if (bytes.length < 2000) throw new Error(`the training text has ${bytes.length} bytes; paste at least 2,000 characters`);
  const ids = vocab.encode(bytes);
  const nValid = Math.min(20000, Math.floor(ids.length * 0.05));
  const trainIds = ids.subarray(0, ids.length - nValid), validIds = ids.subarray(ids.length - nValid);
  const batch = Math.max(1, Math.min(cfg.batch, Math.floor(trainIds.length / (cfg.bptt + 1))));
  const config = { cell: cfg.cell, vocabSize: vocab.size, embedding: 32, hidden: cfg.hidden, layers: cfg.layers, dropout: 0 };
  const trainer = new Trainer(be!, config, vocab, trainIds, validIds, {
    batch, bptt: cfg.bptt, lr: cfg.lr, clip: 5, optimizer: 'adam', minutes: 0, epochs: 0, maxSteps: 0,
    evalSeconds: 0, seed: cfg.seed, out: null,
  });
  const run = { trainer, stop: false, vocab };
  training = run;
  let params = 0;
  for (const p of trainer.model.params.values()) params += p.size;
  post({ type: 'trainStarted', params, trainChars: trainIds.length, validChars: trainer.valid ? validIds.length : 0 });
  trainer.model.resetState(batch);
  const t0 = performance.now();
  let lastPost = t0, lastValid = t0, lastYield = t0, lossSum = 0, lossN = 0;
  let rateT = t0, rateChars = 0, rate = 0;
  const point = (validBpc?: number): TrainPoint => {
    const now = performance.now();
    if (validBpc === undefined && now - rateT > 500) { rate = (trainer.state.chars - rateChars) / ((now - rateT) / 1000); rateT = now; rateChars = trainer.state.chars; }
    const p: TrainPoint = { step: trainer.state.step, seconds: (now - t0) / 1000, loss: lossSum / Math.max(1, lossN) / Math.LN2, charsPerSec: rate };
    if (validBpc !== undefined) p.validBpc = validBpc;
    return p;
  };
  // Pipelined: on webgpu the device runs step k while step k + 1 is recorded (the loss returned is the
  // previous step's); drain() before validating and at the end. On wasm each step's own loss comes back.
  // On a deferred backend the device's loss slot is shared: steps and validations take turns with sampling
  // and the surprisal view (exclusive) so that no loss of theirs is read as another's.
  const turn = <T>(f: () => Promise<T>): Promise<T> => (be!.deferred ? exclusive(f) : f());
  const drain = async (): Promise<void> => {
    const l = await trainer.drain();
    if (l !== null) { lossSum += l; lossN++; }
  };
  try {
    while (!run.stop) {
      lossSum += await turn(() => trainer.stepAsync(true));
      lossN++;
      const now = performance.now();
      if (now - lastPost > 250) {
        if (rate === 0 && now - t0 > 200) { rate = trainer.state.chars / ((now - t0) / 1000); }
        post({ type: 'trainProgress', point: point() });
        lossSum = 0; lossN = 0; lastPost = now;
      }
      if (now - lastValid > 3000) {
        await drain();
        const v = await turn(() => trainer.validate());
        if (v) post({ type: 'trainProgress', point: { ...point(v.bpc), loss: NaN } });
        lastValid = performance.now();
        rateT = lastValid; rateChars = trainer.state.chars; // validation time is not training time
      }
      if (now - lastYield > 50) { await tick(); lastYield = performance.now(); }
    }
    await drain();
    if (lossN > 0) post({ type: 'trainProgress', point: point() });
    const v = await turn(() => trainer.validate());
    if (v) {
      trainer.state.bestBpc = v.bpc;
      post({ type: 'trainProgress', point: { ...point(v.bpc), loss: NaN } });
    }
    trainer.state.seconds = (performance.now() - t0) / 1000;
    trained = { model: trainer.model, vocab, info: infoOf('trained in the page', trainer.model, vocab, trainer.state.step, v?.bpc ?? null) };
    post({ type: 'trainDone', steps: trainer.state.step, seconds: trainer.state.seconds, model: trained.info });
  } finally {
    training = null;
  }
}

// ---------------------------------------------------------------- messages

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function handle(m: Request): Promise<void> {
  switch (m.type) {
    case 'init': {
      const [b, g] = await Promise.all([
        createBrowserBackend({ simd: () => fetchBytes(m.simdUrl), relaxed: () => fetchBytes(m.relaxedUrl) }),
        probeWebGPU(),
      ]);
      wasm = b;
      be = b.backend;
      webgpu = g;
      let modelError: string | undefined;
      try {
        current = load(await fetchBytes(m.modelUrl), 'model.safetensors (bundled)');
      } catch (e) {
        modelError = (e as Error).message;
      }
      try { wiki = await fetchBytes(m.wikiUrl); } catch { wiki = new Uint8Array(0); }
      post({ type: 'ready', backend: b.kind, fallbackReason: b.fallbackReason, model: current?.info ?? null, modelError, wikiChars: wiki.length, workerUrl: self.location.href, webgpu });
      break;
    }
    case 'setBackend':
      await setBackend(m.backend);
      break;
    case 'loadModel':
      await exclusive(() => {
        current = load(new Uint8Array(m.bytes), m.name);
        post({ type: 'model', model: current.info });
      });
      break;
    case 'sample':
      await sample(m);
      break;
    case 'stopSample':
      sampleGen++;
      break;
    case 'analyze':
      await exclusive(async () => {
        if (!current) throw new Error('no model loaded');
        post({ type: 'analysis', id: m.id, result: await analyze(current.model, current.vocab, m.text) });
      });
      break;
    case 'train':
      await train(m.config);
      break;
    case 'stopTrain':
      if (training) training.stop = true;
      break;
    case 'useTrained':
      await exclusive(() => {
        if (!trained) throw new Error('no model has been trained in the page yet');
        current = trained;
        post({ type: 'model', model: current.info });
      });
      break;
    case 'download': {
      const src = m.which === 'trained' ? trained : current;
      if (!src) throw new Error(`no ${m.which} model to download`);
      const state = m.which === 'trained' && src.info.steps !== null
        ? { step: src.info.steps, epoch: 0, position: 0, bestBpc: src.info.bestBpc, seconds: 0, chars: 0 } : undefined;
      const out = await exclusive(async () => {
        await syncCheckpointBuffers(src.model); // deferred backends: the weights come back from the device
        return checkpointToBytes(src.model, src.vocab, state);
      });
      const bytes = out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength) as ArrayBuffer;
      post({ type: 'checkpoint', bytes, name: m.which === 'trained' ? 'rnnkit-playground.safetensors' : 'model.safetensors' }, [bytes]);
      break;
    }
  }
}

self.onmessage = (ev: MessageEvent<Request>) => {
  const m = ev.data;
  handle(m).catch((e: Error) => post({ type: 'error', id: 'id' in m ? m.id : undefined, context: m.type, message: e.message }));
};
