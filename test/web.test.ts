// End-to-end test of the browser playground (web/): builds it with Vite, serves the build on localhost
// (with the COOP/COEP headers the wasm kernels' shared memory needs), and drives Debian's Chromium
// headless through Playwright. Checks: the bundled model loads on the wasm backend; sampling at T=0.1
// with the same seed twice gives the same text; the surprisal view's bits per character for a Wikipedia
// paragraph equals `rnnkit eval` on the same text (to 1e-3); ten seconds of training lower the loss; the
// trained model downloads as a checkpoint and loads back; the page reloads offline. Then, on the webgpu
// backend (Chromium's WebGPU on SwiftShader, its bundled software Vulkan: --enable-unsafe-webgpu gives
// headless Chromium that fallback adapter): the same seed at T=0.1 gives the wasm page's text, the
// surprisal view's bpc equals the wasm page's to 1e-4, a few seconds of training lower the loss, the
// trained model downloads, and switching back to wasm gives the same text again.
// Writes screenshots of the three views (and of training on webgpu) to docs/screenshots/.
// Skipped (with the reason printed) only where Chromium is not installed (`apt-get install chromium`); the
// webgpu part is skipped, with the page's reason, where the browser offers no WebGPU adapter.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = fileURLToPath(new URL('../../', import.meta.url)); // dist/test -> the repository
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = existsSync(chromiumPath) ? false : `Chromium not found at ${chromiumPath} (apt-get install -y chromium, or set CHROMIUM_PATH)`;
if (skip) console.log(`# web.test: skipped: ${skip}`);

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8', '.md': 'text/markdown; charset=utf-8', '.safetensors': 'application/octet-stream',
  '.png': 'image/png', '.svg': 'image/svg+xml', '.json': 'application/json',
};

/** A static file server for the built page, cross-origin isolated like `vite preview`. */
function serve(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(dir, path.endsWith('/') ? path + 'index.html' : path));
    if (!file.startsWith(dir) || !existsSync(file)) { res.writeHead(404).end('not found'); return; }
    res.writeHead(200, {
      'Content-Type': MIME[extname(file)] ?? 'application/octet-stream',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cache-Control': 'no-store',
    });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const a = server.address() as { port: number };
    resolve({ server, url: `http://127.0.0.1:${a.port}/` });
  }));
}

/** A paragraph of the bundled Wikipedia text (about 700 characters, at a paragraph start). */
function wikiParagraph(): string {
  const text = readFileSync(join(root, 'web/public/wiki-sample.txt'), 'utf8');
  const paras = text.split('\n').filter((p) => p.length >= 500 && p.length <= 1200 && !/[^\x20-\x7e]/.test(p));
  return paras[Math.min(7, paras.length - 1)];
}

test('playground: bundled model, repeatable sampling, bpc equal to rnnkit eval, training in the page', { skip, timeout: 240_000 }, async (t) => {
  const t0 = Date.now();
  const vite = await import('vite');
  await vite.build({ configFile: join(root, 'web/vite.config.ts'), logLevel: 'error', customLogger: vite.createLogger('error') });
  const outDir = join(root, 'dist/web');
  assert.ok(existsSync(join(outDir, 'index.html')) && existsSync(join(outDir, 'model.safetensors')));
  const { server, url } = await serve(outDir);
  server.on('error', () => {});
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: chromiumPath, headless: true,
    // --enable-unsafe-webgpu: WebGPU in headless Linux Chromium, on SwiftShader (software Vulkan) here
    args: ['--no-sandbox', '--disable-gpu', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--disable-quic', '--no-first-run', '--disable-dev-shm-usage'],
  });
  const shots = join(root, 'docs/screenshots');
  mkdirSync(shots, { recursive: true });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 820 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    // No request may leave localhost (the page works offline once loaded).
    const outside: string[] = [];
    page.on('request', (r) => { if (!r.url().startsWith(url) && !r.url().startsWith('blob:') && !r.url().startsWith('data:')) outside.push(r.url()); });

    await page.goto(url);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 30_000 });
    const backend = await page.getAttribute('body', 'data-backend');
    assert.match(backend ?? '', /^wasm-/, `the page should run on the wasm backend, got ${backend}: ${await page.textContent('#status')}`);
    assert.match((await page.getAttribute('body', 'data-model')) ?? '', /bundled/, 'the bundled model loads');

    // ---- sampling: T = 0.1, the same seed twice gives the same text
    const sample = async (temperature: number, seed: number, length: number): Promise<string> => {
      // (a range input: set its value and fire 'input', as dragging does)
      await page.$eval('#temperature', (el: any, v: number) => {
        el.value = String(v);
        el.dispatchEvent(new Event('input'));
      }, temperature);
      await page.fill('#seed', String(seed));
      await page.fill('#length', String(length));
      await page.click('#generate');
      await page.waitForSelector('#sample-output[data-done="1"]', { timeout: 30_000 });
      return (await page.getAttribute('#sample-output', 'data-text')) ?? '';
    };
    await page.fill('#prime', 'The history of ');
    const a = await sample(0.1, 42, 300);
    const b = await sample(0.1, 42, 300);
    assert.ok(a.length >= 250, `sampled text too short: ${JSON.stringify(a)}`);
    assert.equal(a, b, 'same seed and temperature, same text');
    const c = await sample(1.2, 7, 300);
    assert.notEqual(c, a, 'another seed at a higher temperature gives another text');
    assert.equal(await page.textContent('#temperature-value'), '1.20');
    await sample(0.6, 1, 700);
    await page.screenshot({ path: join(shots, 'sample.png') });

    // ---- surprisal: bits per character equal to `rnnkit eval` on the same text
    const para = wikiParagraph();
    await page.click('.tab[data-view="surprisal"]');
    await page.fill('#eval-text', para);
    const measure = async (): Promise<number> => {
      await page.click('#analyze');
      await page.waitForFunction("!!document.getElementById('eval-bpc').dataset.bpc", null, { timeout: 60_000 });
      return Number(await page.getAttribute('#eval-bpc', 'data-bpc'));
    };
    const pageBpc = await measure();
    const tmp = mkdtempSync(join(tmpdir(), 'rnnkit-web-'));
    try {
      writeFileSync(join(tmp, 'para.txt'), para);
      const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'dist/src/cli/main.js'), 'eval',
        '--checkpoint', join(root, 'web/public/model.safetensors'), '--data', join(tmp, 'para.txt'), '--json']);
      const cli = JSON.parse(stdout.trim().split('\n').pop()!) as { bpc: number; chars: number };
      assert.equal(cli.chars, Buffer.byteLength(para) - 1);
      assert.ok(Math.abs(pageBpc - cli.bpc) < 1e-3, `page bpc ${pageBpc} vs rnnkit eval ${cli.bpc}`);
      console.log(`# surprisal view: ${pageBpc.toFixed(5)} bpc, rnnkit eval: ${cli.bpc.toFixed(5)} bpc (${cli.chars} chars)`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    const spans = await page.$$('#surprisal span');
    assert.equal(spans.length, [...para].length, 'one coloured span per character');
    await spans[Math.min(120, spans.length - 1)].hover();
    await page.waitForSelector('#tooltip:not([hidden]) table');
    await page.screenshot({ path: join(shots, 'perplexity.png') });

    // ---- training: ten seconds lower the loss
    /**
     * Trains for `seconds` after the first loss is shown (and on until `minSteps` steps are done); the first and
     * last training loss (bits/char).
     */
    const train = async (seconds: number, minSteps = 0): Promise<{ first: number; last: number }> => {
      await page.click('.tab[data-view="train"]');
      await page.click('#train-start');
      await page.waitForFunction("!!document.getElementById('train-stats').dataset.firstLoss", null, { timeout: 60_000 });
      await page.waitForTimeout(seconds * 1000);
      await page.waitForFunction(`Number(document.getElementById('train-stats').dataset.step) >= ${minSteps}`, null, { timeout: 60_000 });
      await page.click('#train-stop');
      await page.waitForSelector('#train-stats[data-running="0"]', { timeout: 60_000 });
      const first = Number(await page.getAttribute('#train-stats', 'data-first-loss'));
      const last = Number(await page.getAttribute('#train-stats', 'data-last-loss'));
      console.log(`# training in the page (${await page.getAttribute('body', 'data-backend')}): loss ${first.toFixed(3)} -> ${last.toFixed(3)} bits/char; ${await page.textContent('#train-stats')}`);
      return { first, last };
    };
    const { first, last } = await train(10);
    assert.ok(Number.isFinite(first) && Number.isFinite(last) && last < first - 0.5, `loss ${first} -> ${last}`);
    await page.screenshot({ path: join(shots, 'train.png') });

    // the trained model can be downloaded as a checkpoint that rnnkit reads
    const downloadTrained = async (): Promise<Buffer> => {
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), page.click('#train-download')])
        .catch(async (e) => { throw new Error(`${(e as Error).message}; status: ${await page.textContent('#status')}`); });
      const bytes = readFileSync((await download.path())!);
      const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString());
      assert.ok(bytes.length > 1000 && header.__metadata__.format === 'rnnkit-charlm/1');
      return bytes;
    };
    const head = await downloadTrained();
    // ... and any checkpoint file loads back through "Load checkpoint…"
    await page.setInputFiles('#load-file', { name: 'trained.safetensors', mimeType: 'application/octet-stream', buffer: head });
    await page.waitForSelector('body[data-model="trained.safetensors"]', { timeout: 15_000 });
    assert.match((await page.textContent('#model-info')) ?? '', /LSTM 1×64/);

    // ---- offline: with the server gone, the page reloads from its service worker's cache and still works
    await page.waitForSelector('body[data-offline="1"]', { timeout: 20_000 });
    await new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); });
    await page.reload();
    await page.waitForSelector('body[data-ready="1"]', { timeout: 30_000 });
    assert.match((await page.getAttribute('body', 'data-backend')) ?? '', /^wasm-/, 'offline: still isolated, on wasm');
    assert.match((await page.getAttribute('body', 'data-model')) ?? '', /bundled/, 'offline: the bundled model loads');
    assert.equal(await sample(0.1, 42, 300), a, 'offline: the same sample');

    // ---- the webgpu backend: the same page, the same results. Chromium's software adapter (SwiftShader) runs
    // these kernels at ~70 ms per time step, so this part uses shorter texts and a small model on pasted
    // text (about 40 s); the wasm numbers it compares with are taken on the same inputs just before.
    const gpuState = await page.getAttribute('body', 'data-webgpu');
    const gpuInfo = (await page.getAttribute('body', 'data-webgpu-info')) ?? '';
    const noGpu = gpuState === 'available' ? false : `no WebGPU adapter in this Chromium: ${gpuInfo}`;
    if (noGpu) console.log(`# web.test: webgpu part skipped: ${noGpu}`);
    await t.test('webgpu backend: same sample and bpc as wasm, training, download, back to wasm', { skip: noGpu }, async () => {
      const g0 = Date.now();
      console.log(`# webgpu adapter: ${gpuInfo}`);
      const short = para.slice(0, 160);
      const wasmText = await sample(0.1, 42, 120);
      assert.ok(a.startsWith(wasmText), 'a shorter sample with the same seed is a prefix of the longer one');
      await page.click('.tab[data-view="surprisal"]');
      await page.fill('#eval-text', short);
      const wasmBpc = await measure();
      await page.click('.tab[data-view="sample"]');
      await page.selectOption('#backend', 'webgpu');
      await page.waitForSelector('body[data-backend="webgpu"]', { timeout: 60_000 })
        .catch(async (e) => { throw new Error(`${(e as Error).message}; status: ${await page.textContent('#status')}`); });
      assert.match((await page.getAttribute('body', 'data-model')) ?? '', /bundled/, 'the bundled model moved to webgpu');
      assert.equal(await sample(0.1, 42, 120), wasmText, 'webgpu: same seed and temperature, the wasm text');
      await page.click('.tab[data-view="surprisal"]');
      await page.fill('#eval-text', short);
      const gpuBpc = await measure();
      console.log(`# webgpu surprisal view: ${gpuBpc.toFixed(6)} bpc, wasm: ${wasmBpc.toFixed(6)} bpc (${short.length} chars)`);
      assert.ok(Math.abs(gpuBpc - wasmBpc) < 1e-4, `webgpu page bpc ${gpuBpc} vs wasm page ${wasmBpc}`);
      assert.equal((await page.$$('#surprisal span')).length, [...short].length, 'one coloured span per character');
      // training: a small LSTM on 8,000 pasted characters of Wikipedia, six seconds and at least 12 steps
      await page.click('.tab[data-view="train"]');
      await page.selectOption('#train-source', 'text');
      await page.fill('#train-text', readFileSync(join(root, 'web/public/wiki-sample.txt'), 'utf8').slice(0, 8000));
      await page.selectOption('#train-hidden', '32');
      await page.fill('#train-batch', '16');
      await page.fill('#train-bptt', '16');
      await page.fill('#train-lr', '0.01');
      const gt = await train(6, 12);
      assert.ok(Number.isFinite(gt.first) && Number.isFinite(gt.last) && gt.last < gt.first - 0.5, `webgpu loss ${gt.first} -> ${gt.last}`);
      await page.screenshot({ path: join(shots, 'webgpu.png') });
      const ck = await downloadTrained();
      await page.setInputFiles('#load-file', { name: 'webgpu-trained.safetensors', mimeType: 'application/octet-stream', buffer: ck });
      await page.waitForSelector('body[data-model="webgpu-trained.safetensors"]', { timeout: 30_000 });
      assert.match((await page.textContent('#model-info')) ?? '', /LSTM 1×32/);
      await page.selectOption('#backend', 'wasm');
      await page.waitForSelector('body[data-backend^="wasm-"]', { timeout: 60_000 });
      assert.match((await page.textContent('#model-info')) ?? '', /LSTM 1×32/, 'the loaded model moved back to wasm');
      console.log(`# webgpu part: ${((Date.now() - g0) / 1000).toFixed(1)} s`);
    });

    assert.deepEqual(errors, [], 'no errors in the page');
    assert.deepEqual(outside, [], 'no requests outside localhost');
    console.log(`# web.test: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    await browser.close();
    server.close();
  }
});
