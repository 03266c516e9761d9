// The playground page: three views (sample, surprisal, train) talking to the model worker.

import type { Analysis, BackendChoice, ModelInfo, Reply, Request, TrainConfig, TrainPoint } from './protocol.js';
import simdUrl from '../../dist/wasm/rnnkit-simd.wasm?url';
import relaxedUrl from '../../dist/wasm/rnnkit-relaxed.wasm?url';

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;
const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
const send = (m: Request, transfer: Transferable[] = []): void => worker.postMessage(m, transfer);
const asset = (name: string): string => new URL(name, document.baseURI).href;

const fmt = (x: number, d = 3): string => (Number.isFinite(x) ? x.toFixed(d) : '–');
const int = (x: number): string => Math.round(x).toLocaleString('en-US');

// ---------------------------------------------------------------- tabs

for (const b of document.querySelectorAll<HTMLButtonElement>('.tab')) {
  b.addEventListener('click', () => {
    for (const t of document.querySelectorAll('.tab')) t.classList.toggle('active', t === b);
    for (const v of document.querySelectorAll('.view')) v.classList.toggle('active', v.id === `view-${b.dataset.view}`);
  });
}

// ---------------------------------------------------------------- model bar

let ready = false;
let modelNow: ModelInfo | null = null;
function showModel(m: ModelInfo | null): void {
  modelNow = m;
  $('model-info').textContent = m
    ? `${m.name}: ${m.cell.toUpperCase()} ${m.layers}×${m.hidden}, ${m.vocab} vocabulary (${m.vocabSize}), ${int(m.params)} parameters` +
      (m.steps !== null ? `, ${int(m.steps)} steps` : '') + (m.bestBpc !== null ? `, validation ${fmt(m.bestBpc)} bpc` : '')
    : 'no model loaded';
  document.body.dataset.model = m ? m.name : '';
  for (const id of ['generate', 'analyze', 'download-current']) $<HTMLButtonElement>(id).disabled = !m;
}

$<HTMLInputElement>('load-file').addEventListener('change', async (ev) => {
  const f = (ev.target as HTMLInputElement).files?.[0];
  if (!f) return;
  const bytes = await f.arrayBuffer();
  $('status').textContent = `loading ${f.name}…`;
  send({ type: 'loadModel', bytes, name: f.name }, [bytes]);
});
$('download-current').addEventListener('click', () => send({ type: 'download', which: 'current' }));

// ---------------------------------------------------------------- backend (wasm | webgpu)

const backendSelect = $<HTMLSelectElement>('backend');
let backendNow: { choice: BackendChoice; kind: string; detail: string } = { choice: 'wasm', kind: '', detail: '' };
let switching = false, training = false;

function showBackend(): void {
  const { kind, detail } = backendNow;
  $('status').textContent = kind === 'js' ? `JS backend (${detail})` : kind === 'webgpu' ? 'webgpu backend' : `${kind} backend`;
  $('status').title = kind === 'webgpu' ? `rnnkit WGSL kernels on ${detail}, in a Web Worker` : kind === 'js' ? detail : 'rnnkit WebAssembly kernels in a Web Worker';
  document.body.dataset.backend = kind;
  backendSelect.value = backendNow.choice;
  backendSelect.disabled = !ready || switching || training;
}

function switchBackend(choice: BackendChoice): void {
  if (switching || choice === backendNow.choice) { backendSelect.value = backendNow.choice; return; }
  switching = true;
  backendSelect.disabled = true;
  $('status').textContent = `switching to ${choice}…`;
  document.body.dataset.backend = 'switching';
  for (const id of ['generate', 'analyze', 'download-current', 'train-start']) $<HTMLButtonElement>(id).disabled = true;
  send({ type: 'setBackend', backend: choice });
}
backendSelect.addEventListener('change', () => switchBackend(backendSelect.value as BackendChoice));

// ---------------------------------------------------------------- sample

let sampleId = 0;
const tempInput = $<HTMLInputElement>('temperature');
const showTemp = (): void => { $('temperature-value').textContent = Number(tempInput.value).toFixed(2); };
tempInput.addEventListener('input', showTemp);
showTemp();

$('generate').addEventListener('click', () => {
  const out = $('sample-output');
  const prime = $<HTMLInputElement>('prime').value;
  out.textContent = '';
  out.dataset.done = '0';
  const primeSpan = document.createElement('span');
  primeSpan.className = 'prime';
  primeSpan.textContent = prime;
  out.append(primeSpan, document.createElement('span'));
  out.dataset.text = '';
  sampleId++;
  $<HTMLButtonElement>('stop-sample').disabled = false;
  $('sample-stats').textContent = 'generating…';
  send({
    type: 'sample', id: sampleId, prime,
    temperature: Number(tempInput.value),
    length: Math.max(1, Math.min(20000, Math.floor(Number($<HTMLInputElement>('length').value) || 1))),
    seed: Math.max(0, Math.floor(Number($<HTMLInputElement>('seed').value) || 0)),
  });
});
$('stop-sample').addEventListener('click', () => send({ type: 'stopSample' }));

// ---------------------------------------------------------------- surprisal

let analyzeId = 0;
let analysis: Analysis | null = null;
$<HTMLTextAreaElement>('eval-text').value =
  'Anarchism is a political philosophy that advocates self-governed societies based on voluntary institutions. ' +
  'These are often described as stateless societies, although several authors have defined them more specifically ' +
  'as institutions based on non-hierarchical free associations.';

$('analyze').addEventListener('click', () => {
  const text = $<HTMLTextAreaElement>('eval-text').value;
  analyzeId++;
  $('eval-bpc').textContent = '…';
  $('eval-bpc').dataset.bpc = '';
  send({ type: 'analyze', id: analyzeId, text });
});

/** Background colour for a surprisal in bits: green (0) through yellow (4) to red (>= 8). */
function heat(bits: number): string {
  if (!Number.isFinite(bits)) return 'transparent';
  const x = Math.max(0, Math.min(1, bits / 8));
  return `hsl(${120 - 120 * x} ${70 + 15 * x}% ${90 - 28 * x}%)`;
}

function showAnalysis(a: Analysis): void {
  analysis = a;
  const bpc = $('eval-bpc');
  bpc.textContent = a.bpc.toFixed(4);
  bpc.dataset.bpc = String(a.bpc);
  $('eval-perplexity').textContent = a.perplexity.toFixed(3);
  $('eval-extra').textContent = `${int(a.tokens - 1)} tokens predicted in ${fmt(a.seconds, 2)} s`;
  const box = $('surprisal');
  box.textContent = '';
  const frag = document.createDocumentFragment();
  a.chars.forEach((ch, i) => {
    const s = document.createElement('span');
    s.textContent = ch;
    s.dataset.i = String(i);
    s.style.background = heat(a.bits[i]);
    frag.append(s);
  });
  box.append(frag);
}

const tip = $('tooltip');
const show = (ch: string): string => (ch === '\n' ? '↵' : ch === ' ' ? '␣' : ch === '\t' ? '⇥' : ch);
$('surprisal').addEventListener('mousemove', (ev) => {
  const t = ev.target as HTMLElement;
  const i = t.dataset.i === undefined ? -1 : Number(t.dataset.i);
  if (!analysis || i < 0) { tip.hidden = true; return; }
  const bits = analysis.bits[i];
  tip.textContent = '';
  const head = document.createElement('div');
  head.innerHTML = `<b></b> ${Number.isFinite(bits) ? `${bits.toFixed(2)} bits (p = ${(2 ** -bits).toPrecision(3)})` : 'first character: not predicted'}`;
  head.querySelector('b')!.textContent = `“${show(analysis.chars[i])}”`;
  tip.append(head);
  if (analysis.top[i].length) {
    const tbl = document.createElement('table');
    for (const [tok, p] of analysis.top[i]) {
      const tr = tbl.insertRow();
      tr.insertCell().textContent = show(tok);
      const bar = tr.insertCell();
      bar.innerHTML = `<span class="bar" style="width:${Math.round(p * 80)}px"></span> ${(100 * p).toFixed(1)}%`;
    }
    tip.append(tbl);
  }
  tip.hidden = false;
  const r = t.getBoundingClientRect();
  tip.style.left = `${Math.min(window.innerWidth - 240, r.left + window.scrollX)}px`;
  tip.style.top = `${r.bottom + window.scrollY + 6}px`;
});
$('surprisal').addEventListener('mouseleave', () => { tip.hidden = true; });

// ---------------------------------------------------------------- train

const points: TrainPoint[] = [];
let trainFirstLoss = NaN;

function trainConfig(): TrainConfig {
  const num = (id: string): number => Number($<HTMLInputElement>(id).value);
  return {
    source: $<HTMLSelectElement>('train-source').value as 'wiki' | 'text',
    text: $<HTMLTextAreaElement>('train-text').value,
    cell: $<HTMLSelectElement>('train-cell').value as 'lstm' | 'gru',
    hidden: num('train-hidden'), layers: num('train-layers'),
    batch: Math.max(1, Math.floor(num('train-batch'))), bptt: Math.max(4, Math.floor(num('train-bptt'))),
    lr: num('train-lr') > 0 ? num('train-lr') : 0.003, seed: 1,
  };
}

$('train-start').addEventListener('click', () => {
  points.length = 0;
  trainFirstLoss = NaN;
  const st = $('train-stats');
  st.dataset.running = '1';
  st.dataset.firstLoss = '';
  st.dataset.lastLoss = '';
  st.textContent = 'starting…';
  $<HTMLButtonElement>('train-start').disabled = true;
  $<HTMLButtonElement>('train-stop').disabled = false;
  $<HTMLButtonElement>('train-use').disabled = true;
  $<HTMLButtonElement>('train-download').disabled = true;
  training = true;
  backendSelect.disabled = true;
  send({ type: 'train', config: trainConfig() });
  drawChart();
});
$('train-stop').addEventListener('click', () => {
  send({ type: 'stopTrain' });
  $<HTMLButtonElement>('train-stop').disabled = true;
});
$('train-use').addEventListener('click', () => send({ type: 'useTrained' }));
$('train-download').addEventListener('click', () => send({ type: 'download', which: 'trained' }));

function trainStats(): void {
  const losses = points.filter((p) => Number.isFinite(p.loss));
  const valids = points.filter((p) => p.validBpc !== undefined);
  const last = points[points.length - 1];
  const lastLoss = losses[losses.length - 1]?.loss ?? NaN;
  const st = $('train-stats');
  st.dataset.lastLoss = String(lastLoss);
  st.dataset.firstLoss = String(trainFirstLoss);
  st.dataset.step = String(last?.step ?? 0);
  st.textContent = last
    ? `step ${int(last.step)} · ${fmt(last.seconds, 1)} s · training loss ${fmt(lastLoss)} bits/char` +
      (valids.length ? ` · validation ${fmt(valids[valids.length - 1].validBpc!)} bpc` : '') +
      ` · ${int(last.charsPerSec)} chars/s`
    : 'starting…';
}

function drawChart(): void {
  const cv = $<HTMLCanvasElement>('train-chart');
  const dpr = window.devicePixelRatio || 1;
  const w = cv.clientWidth || 900, h = cv.clientHeight || 300;
  if (cv.width !== Math.round(w * dpr)) { cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr); }
  const g = cv.getContext('2d')!;
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const L = 48, R = 64, T = 34, B = 30;
  const pw = w - L - R, ph = h - T - B;
  const tMax = Math.max(10, ...points.map((p) => p.seconds));
  const ys = points.flatMap((p) => [p.loss, p.validBpc ?? NaN]).filter(Number.isFinite);
  const yMax = Math.max(1, Math.ceil(Math.max(...ys, 4)));
  const rMax = Math.max(1000, ...points.map((p) => p.charsPerSec)) * 1.1;
  const X = (t: number): number => L + (t / tMax) * pw;
  const Y = (v: number): number => T + ph - (v / yMax) * ph;
  const Yr = (v: number): number => T + ph - (v / rMax) * ph;
  g.font = '12px system-ui, sans-serif';
  g.strokeStyle = '#ddd'; g.fillStyle = '#555'; g.lineWidth = 1;
  for (let v = 0; v <= yMax; v++) {
    g.beginPath(); g.moveTo(L, Y(v)); g.lineTo(L + pw, Y(v)); g.stroke();
    g.fillText(String(v), L - 18, Y(v) + 4);
  }
  g.fillText('bits/char', 4, T - 12);
  for (let k = 0; k <= 4; k++) {
    const v = (rMax * k) / 4;
    g.fillText(v >= 1000 ? `${Math.round(v / 1000)}k` : String(Math.round(v)), L + pw + 6, Yr(v) + 4);
  }
  g.fillText('chars/s', L + pw + 6, T - 12);
  const step = tMax > 60 ? 10 : 5;
  for (let s = 0; s <= tMax; s += step) g.fillText(`${s}s`, X(s) - 6, T + ph + 18);
  const line = (sel: (p: TrainPoint) => number, color: string, y: (v: number) => number, width = 2): void => {
    g.strokeStyle = color; g.lineWidth = width; g.beginPath();
    let first = true;
    for (const p of points) {
      const v = sel(p);
      if (!Number.isFinite(v)) continue;
      if (first) g.moveTo(X(p.seconds), y(v)); else g.lineTo(X(p.seconds), y(v));
      first = false;
    }
    g.stroke();
  };
  line((p) => (p.charsPerSec > 0 ? p.charsPerSec : NaN), '#bbb', Yr, 1.5);
  line((p) => p.loss, '#2563eb', Y);
  line((p) => p.validBpc ?? NaN, '#ea580c', Y, 2.5);
  g.fillStyle = '#ea580c';
  for (const p of points) if (p.validBpc !== undefined) { g.beginPath(); g.arc(X(p.seconds), Y(p.validBpc), 3.5, 0, 7); g.fill(); }
  const legend: [string, string][] = [['training loss', '#2563eb'], ['validation bpc', '#ea580c'], ['chars/s', '#bbb']];
  let lx = L + 70;
  for (const [name, c] of legend) {
    g.fillStyle = c; g.fillRect(lx, 13, 14, 3);
    g.fillStyle = '#333'; g.fillText(name, lx + 18, 18);
    lx += g.measureText(name).width + 40;
  }
}
window.addEventListener('resize', drawChart);

// ---------------------------------------------------------------- worker replies

worker.onmessage = (ev: MessageEvent<Reply>) => {
  const m = ev.data;
  switch (m.type) {
    case 'ready': {
      ready = true;
      backendNow = { choice: 'wasm', kind: m.backend, detail: m.fallbackReason ?? 'WebAssembly kernels' };
      const [wasmOpt, gpuOpt] = [...backendSelect.options];
      wasmOpt.textContent = m.backend === 'js' ? 'js (no WebAssembly kernels)' : m.backend;
      wasmOpt.title = m.fallbackReason ?? 'rnnkit WebAssembly SIMD kernels, one thread';
      gpuOpt.disabled = !m.webgpu.available;
      gpuOpt.textContent = m.webgpu.available ? `webgpu: ${m.webgpu.adapter}` : `webgpu (unavailable: ${m.webgpu.reason})`;
      gpuOpt.title = gpuOpt.textContent;
      document.body.dataset.webgpu = m.webgpu.available ? 'available' : 'unavailable';
      document.body.dataset.webgpuInfo = m.webgpu.available ? m.webgpu.adapter : m.webgpu.reason;
      $('backend-choice').title = m.webgpu.available ? `WebGPU adapter: ${m.webgpu.adapter}` : `WebGPU: ${m.webgpu.reason}`;
      showBackend();
      showModel(m.model);
      if (m.modelError) $('model-info').textContent = `the bundled model did not load: ${m.modelError}`;
      $<HTMLButtonElement>('train-start').disabled = false;
      document.body.dataset.ready = '1';
      document.body.dataset.backend = m.backend;
      void registerServiceWorker([...workerFiles, m.workerUrl]);
      // ?backend=webgpu starts on WebGPU where the browser has it
      if (new URLSearchParams(location.search).get('backend') === 'webgpu' && m.webgpu.available) switchBackend('webgpu');
      break;
    }
    case 'backend':
      switching = false;
      backendNow = { choice: m.choice, kind: m.backend, detail: m.detail };
      showBackend();
      showModel(m.model);
      $<HTMLButtonElement>('train-start').disabled = training;
      break;
    case 'model':
      showBackend();
      showModel(m.model);
      break;
    case 'sampleChunk': {
      if (m.id !== sampleId) break;
      const out = $('sample-output');
      out.lastElementChild!.textContent += m.text;
      out.dataset.text = (out.dataset.text ?? '') + m.text;
      break;
    }
    case 'sampleDone':
      if (m.id !== sampleId) break;
      $('sample-output').dataset.done = '1';
      $<HTMLButtonElement>('stop-sample').disabled = true;
      $('sample-stats').textContent = `${int(m.tokens)} tokens in ${fmt(m.seconds, 2)} s (${int(m.tokens / Math.max(m.seconds, 1e-3))} tokens/s)${m.stopped ? ', stopped' : ''}`;
      break;
    case 'analysis':
      if (m.id === analyzeId) showAnalysis(m.result);
      break;
    case 'trainStarted':
      $('train-stats').textContent = `training ${int(m.params)} parameters on ${int(m.trainChars)} characters (validation: ${int(m.validChars)})…`;
      break;
    case 'trainProgress':
      points.push(m.point);
      if (Number.isNaN(trainFirstLoss) && Number.isFinite(m.point.loss)) trainFirstLoss = m.point.loss;
      trainStats();
      drawChart();
      break;
    case 'trainDone':
      training = false;
      showBackend();
      $('train-stats').dataset.running = '0';
      trainStats();
      $('train-stats').textContent += ` — stopped after ${int(m.steps)} steps`;
      $<HTMLButtonElement>('train-start').disabled = false;
      $<HTMLButtonElement>('train-stop').disabled = true;
      $<HTMLButtonElement>('train-use').disabled = false;
      $<HTMLButtonElement>('train-download').disabled = false;
      break;
    case 'checkpoint': {
      const url = URL.createObjectURL(new Blob([m.bytes], { type: 'application/octet-stream' }));
      const a = document.createElement('a');
      a.href = url; a.download = m.name;
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      break;
    }
    case 'error':
      $('status').textContent = `error (${m.context}): ${m.message}`;
      if (m.context === 'setBackend') {
        switching = false;
        showModel(modelNow);
        $<HTMLButtonElement>('train-start').disabled = training;
        const msg = `could not switch the backend: ${m.message}`;
        showBackend();
        $('status').textContent = msg;
      }
      if (m.context === 'train') {
        training = false;
        backendSelect.disabled = switching;
        $('train-stats').dataset.running = '0';
        $('train-stats').textContent = `error: ${m.message}`;
        $<HTMLButtonElement>('train-start').disabled = !ready;
        $<HTMLButtonElement>('train-stop').disabled = true;
      }
      if (m.context === 'analyze') $('eval-bpc').textContent = `error: ${m.message}`;
      if (m.context === 'sample') { $('sample-stats').textContent = `error: ${m.message}`; $('sample-output').dataset.done = '1'; }
      break;
  }
};
worker.onerror = (e) => { $('status').textContent = `worker failed: ${e.message}`; };

// ---------------------------------------------------------------- offline and isolation (service worker)

async function registerServiceWorker(workerFiles: string[]): Promise<void> {
  if (import.meta.env.DEV || !('serviceWorker' in navigator)) return;
  try {
    await navigator.serviceWorker.register(asset('sw.js'));
    const reg = await navigator.serviceWorker.ready;
    if (!crossOriginIsolated && !sessionStorage.getItem('rnnkit-isolation-reload') && navigator.serviceWorker.controller === null) {
      // The server sent no COOP/COEP headers: reload once under the service worker, which adds them.
      sessionStorage.setItem('rnnkit-isolation-reload', '1');
      location.reload();
      return;
    }
    const urls = [location.href.split('#')[0], ...workerFiles,
      ...performance.getEntriesByType('resource').map((e) => e.name)].filter((u) => u.startsWith(location.origin));
    reg.active?.postMessage({ type: 'cache', urls });
  } catch (e) {
    console.warn(`rnnkit playground: no service worker (the page will not reload offline): ${(e as Error).message}`);
  }
}
navigator.serviceWorker?.addEventListener('message', (ev) => {
  if ((ev.data as { type?: string })?.type === 'cached') document.body.dataset.offline = '1';
});

const workerFiles = [asset('model.safetensors'), asset('wiki-sample.txt'), asset(simdUrl), asset(relaxedUrl)];
send({ type: 'init', modelUrl: asset('model.safetensors'), wikiUrl: asset('wiki-sample.txt'), simdUrl: asset(simdUrl), relaxedUrl: asset(relaxedUrl) });
drawChart();
