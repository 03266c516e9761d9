// The webgpu backend's gradients, training and sampling (its PyTorch parity runs in parity.test.ts).
// On lavapipe (scripts/setup-lavapipe.sh) in CI, on a GPU where there is one; skipped with the reason
// where no adapter can be had.
//
// Gradient checks: the float64 reference's gradients are checked against finite differences in
// gradcheck.test.ts / norm.test.ts; here the same configurations run on webgpu (float32) from the same
// weights and inputs, and every output and gradient must match them to float32 accuracy. A central-difference
// check in float32 on the device itself backs that up for each cell.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Backend, Buf } from '../src/backend/backend.js';
import { JsBackend } from '../src/backend/js.js';
import { syncHost } from '../src/backend/sync.js';
import { RecurrentStack, type RecurrentOptions, type RnnMode } from '../src/layers/recurrent.js';
import { CharLM, type CellKind } from '../src/models/charlm.js';
import { ByteVocab } from '../src/data/vocab.js';
import { Trainer, type TrainOptions } from '../src/train/trainer.js';
import { sampleIds, sampleIdsAsync } from '../src/train/sample.js';
import { Rng } from '../src/util/rng.js';
import { webgpuBackend } from './backends.js';
import { closeTo } from './helpers.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeSafetensors } from '../src/io/safetensors.js';
import { windowLM } from '../src/models/window.js';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
import { GEMM_TILES, gemmShape, type WebGPUBackend } from '../src/backend/webgpu.js';
import { benchKernels, lstmGemmShapes } from '../src/bench/kernels.js';

const gpu = await webgpuBackend();
const skip = gpu ? false : 'no WebGPU adapter here (see the printed reason)';
const ref = new JsBackend('float64');

/** max |got - want| / max(1, max |want|) <= tol. */
const close = (what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol = 2e-5): void => closeTo(what, got, want, tol, true);

interface Run { out: number[]; hN: number[]; cN: number[]; grads: Map<string, number[]>; dx: number[]; dh0: number[]; dc0: number[] }

/** Forward + backward of a stack with given weights and inputs on `be`; everything read back. */
async function runStack(be: Backend, mode: RnnMode, opts: Partial<RecurrentOptions>, T: number, B: number, I: number, H: number,
  weights: Map<string, ArrayLike<number>> | null, inputs: Record<string, number[]>, lengths: number[] | null): Promise<{ run: Run; weights: Map<string, ArrayLike<number>> }> {
  const rnn = new RecurrentStack(be, mode, { inputSize: I, hiddenSize: H, seed: 8, ...opts });
  const params = rnn.parameters();
  if (weights) for (const p of params) p.data.set(weights.get(p.name)!);
  else { // move γ/β and weight-norm g away from their initial values, as norm.test.ts does
    const rng = new Rng(4);
    for (const p of params) if (/^norm_|_g$/.test(p.name)) for (let i = 0; i < p.size; i++) p.data[i] += rng.uniform(-0.3, 0.3);
  }
  const fill = (a: number[]): Buf => { const b = be.alloc(a.length); b.set(a); return b; };
  const lstm = mode === 'LSTM';
  const r = rnn.forward(fill(inputs.x), 0, T, B, fill(inputs.h0), lstm ? fill(inputs.c0) : null, true, lengths ? Int32Array.from(lengths) : null);
  const outLen = r.outT * B * rnn.outputSize;
  for (const p of params) p.zeroGrad();
  const g = rnn.backward(fill(inputs.dy.slice(0, outLen)), 0, fill(inputs.dhN), lstm ? fill(inputs.dcN) : null, true);
  await syncHost(be);
  const run: Run = {
    out: Array.from(r.out.subarray(r.outOff, r.outOff + outLen)), hN: Array.from(r.hN), cN: r.cN ? Array.from(r.cN) : [],
    grads: new Map(params.map((p) => [p.name, Array.from(p.grad)])),
    dx: Array.from(g.dx!.subarray(0, T * B * I)), dh0: Array.from(g.dh0), dc0: g.dc0 ? Array.from(g.dc0) : [],
  };
  return { run, weights: new Map(params.map((p) => [p.name, Float64Array.from(p.data)])) };
}

const configs: { name: string; opts: Partial<RecurrentOptions>; T: number; B: number; lengths: number[] | null }[] = [
  { name: '1 layer', opts: {}, T: 4, B: 3, lengths: null },
  { name: '2 layers', opts: { numLayers: 2 }, T: 4, B: 3, lengths: null },
  { name: '2 layers, bidirectional', opts: { numLayers: 2, bidirectional: true }, T: 4, B: 3, lengths: null },
  { name: '2 layers, dropout', opts: { numLayers: 2, dropout: 0.3 }, T: 4, B: 3, lengths: null },
  { name: 'dilation [1, 2]', opts: { numLayers: 2, dilation: [1, 2] }, T: 4, B: 3, lengths: null },
  { name: 'stride [2, 1]', opts: { numLayers: 2, stride: [2, 1] }, T: 6, B: 3, lengths: null },
  { name: 'variable lengths', opts: {}, T: 5, B: 3, lengths: [5, 2, 4] },
  { name: 'layer norm', opts: { norm: 'layer' }, T: 4, B: 3, lengths: null },
  { name: 'batch norm', opts: { norm: 'batch' }, T: 4, B: 3, lengths: null },
  { name: 'batch norm, per-step γ/β', opts: { norm: { kind: 'batch', perStepAffine: true, maxSteps: 3 } }, T: 4, B: 3, lengths: null },
  { name: 'weight norm', opts: { norm: 'weight' }, T: 4, B: 3, lengths: null },
  { name: 'layer norm, 2 layers, bidirectional, variable lengths', opts: { norm: 'layer', numLayers: 2, bidirectional: true }, T: 4, B: 3, lengths: [4, 1, 3] },
  { name: 'batch norm, 2 layers, bidirectional, variable lengths', opts: { norm: 'batch', numLayers: 2, bidirectional: true }, T: 4, B: 5, lengths: [4, 4, 3, 4, 2] },
  { name: 'weight norm, 2 layers, dilation [1, 2]', opts: { norm: 'weight', numLayers: 2, dilation: [1, 2] }, T: 4, B: 3, lengths: null },
];

describe('webgpu', { skip }, async () => {
  const be = gpu ? await gpu.make() : (null as unknown as Backend);
  after(() => be?.dispose());

  test('gemm: every transpose case, beta 0 and 1, offsets and strides, each tile size (128/64/32) and split K', async () => {
    const js = new JsBackend('float32'), rng = new Rng(3), wg = be as WebGPUBackend;
    const shapes: [number, number, number][] = [[70, 130, 33], [1, 1, 1], [3, 5, 700], [16, 256, 1024], [200, 300, 20], [17, 1024, 64], [129, 257, 40]];
    const defaults = wg.gemmTiles;
    for (const tiles of [defaults, ...GEMM_TILES.map((t) => [t])]) for (const [M, N, K] of shapes) {
      wg.gemmTiles = tiles;
      const split = gemmShape(M, N, K, tiles);
      for (const tA of [false, true]) for (const tB of [false, true]) for (const beta of [0, 1] as const) {
        const lda = (tA ? M : K) + 3, ldb = (tB ? K : N) + 1, ldc = N + 2;
        const nA = (tA ? K : M) * lda + 5, nB = (tB ? N : K) * ldb + 2, nC = M * ldc + 4;
        const mk = (b: Backend, n: number, vals: number[]): Buf => { const x = b.alloc(n); x.set(vals); return x; };
        const va = Array.from({ length: nA }, () => rng.uniform(-1, 1)), vb = Array.from({ length: nB }, () => rng.uniform(-1, 1));
        const vc = Array.from({ length: nC }, () => rng.uniform(-1, 1));
        const C = mk(be, nC, vc), C2 = mk(js, nC, vc);
        be.gemm(tA, tB, M, N, K, mk(be, nA, va), 5, lda, mk(be, nB, vb), 2, ldb, beta, C, 4, ldc);
        js.gemm(tA, tB, M, N, K, mk(js, nA, va), 5, lda, mk(js, nB, vb), 2, ldb, beta, C2, 4, ldc);
        await syncHost(be, [C]);
        close(`gemm ${M}x${N}x${K} tA=${tA} tB=${tB} beta=${beta} (tile ${split.T}, split ${split.S})`, C, C2, 1e-5 * Math.sqrt(K));
      }
    }
    wg.gemmTiles = defaults;
    assert.ok(gemmShape(64, 512, 2048).S > 1 && gemmShape(64, 512, 2048).T === 32, 'the recurrent dh multiply splits K');
    assert.equal(gemmShape(8192, 2048, 512).T, 128, 'the input projection over all steps takes 128x128 tiles');
    assert.equal(gemmShape(8192, 2048, 512, [64, 32]).T, 64, 'a restricted tile list is kept');
    assert.equal(gemmShape(128, 4096, 1024).T, 64, 'the L-lstm step multiply takes 64x64 tiles (128 workgroups)');
  });

  test('bench --kernels: a dispatch chain and each LSTM multiply for every tile choice, tiles restored after', async () => {
    const wg = be as WebGPUBackend, before = wg.gemmTiles;
    const r = await benchKernels(wg, { quick: true });
    assert.equal(r[0].kernel, 'dispatch');
    assert.ok(r[0].us > 0 && r[0].host_us > 0, JSON.stringify(r[0]));
    const g = r.filter((x) => x.kernel === 'gemm');
    assert.equal(g.length, lstmGemmShapes('tiny', 32, 8, 4).length * (1 + GEMM_TILES.length));
    for (const x of g) {
      assert.ok(x.tflops! > 0 && Number.isFinite(x.tflops!), JSON.stringify(x));
      if (x.tiles !== 'default') assert.equal(x.tile, Number(x.tiles));
    }
    assert.equal(wg.gemmTiles, before);
  });

  test('sumRows: few rows, and many rows (chunked), accumulating at an offset', async () => {
    const js = new JsBackend('float32'), rng = new Rng(8);
    for (const [rows, n] of [[7, 33], [1500, 70], [513, 5]]) {
      const vals = Array.from({ length: rows * n + 3 }, () => rng.uniform(-1, 1)), init = Array.from({ length: n + 2 }, () => rng.uniform(-1, 1));
      const mk = (b: Backend, v: number[]): Buf => { const x = b.alloc(v.length); x.set(v); return x; };
      const db = mk(be, init), db2 = mk(js, init);
      be.sumRows(rows, n, mk(be, vals), 3, db, 2);
      js.sumRows(rows, n, mk(js, vals), 3, db2, 2);
      await syncHost(be, [db]);
      close(`sumRows ${rows}x${n}`, db, db2, 1e-5);
    }
  });

  for (const mode of ['LSTM', 'GRU', 'RNN_TANH', 'RNN_RELU'] as RnnMode[]) {
    for (const c of configs) {
      if (mode === 'RNN_RELU' && c.opts.norm) continue;
      test(`${mode} ${c.name}: outputs and every gradient equal the float64 reference's`, async () => {
        const I = 3, H = 4, rng = new Rng(21);
        const probe = new RecurrentStack(ref, mode, { inputSize: I, hiddenSize: H, ...c.opts });
        const S = probe.stateLength(c.B), O = probe.outputSize;
        const rand = (n: number, a: number): number[] => Array.from({ length: n }, () => Math.fround(rng.uniform(-a, a)));
        const inputs = { x: rand(c.T * c.B * I, 1.5), h0: rand(S, 0.8), c0: rand(S, 0.8), dy: rand(c.T * c.B * O, 1), dhN: rand(S, 1), dcN: rand(S, 1) };
        const want = await runStack(ref, mode, c.opts, c.T, c.B, I, H, null, inputs, c.lengths);
        const w32 = new Map([...want.weights].map(([k, v]) => [k, Float32Array.from(v)]));
        const w64 = new Map([...w32].map(([k, v]) => [k, Float64Array.from(v)]));
        const exact = await runStack(ref, mode, c.opts, c.T, c.B, I, H, w64, inputs, c.lengths); // float32-rounded weights
        const got = await runStack(be, mode, c.opts, c.T, c.B, I, H, w32, inputs, c.lengths);
        const tol = c.opts.norm ? 1e-4 : 2e-5; // normalized layers: sums of many terms, float32 keeps ~7 digits
        for (const k of ['out', 'hN', 'cN', 'dx', 'dh0', 'dc0'] as const) close(k, got.run[k], exact.run[k], tol);
        for (const [name, g] of exact.run.grads) close(`grad ${name}`, got.run.grads.get(name)!, g, tol);
      });
    }
  }

  for (const mode of ['LSTM', 'GRU', 'RNN_TANH'] as RnnMode[]) {
    test(`${mode}: central differences in float32 on the device agree with its gradients`, async () => {
      const T = 3, B = 2, I = 3, H = 4, L = 2, rng = new Rng(5);
      const rnn = new RecurrentStack(be, mode, { inputSize: I, hiddenSize: H, numLayers: L, seed: 3 });
      const rand = (n: number, a: number): Buf => { const b = be.alloc(n); for (let i = 0; i < n; i++) b[i] = rng.uniform(-a, a); return b; };
      const x = rand(T * B * I, 1), h0 = rand(L * B * H, 0.5), c0 = rand(L * B * H, 0.5), dy = rand(T * B * H, 1);
      const lstm = mode === 'LSTM';
      const loss = async (): Promise<number> => {
        const r = rnn.forward(x, 0, T, B, h0, lstm ? c0 : null, true);
        await syncHost(be, [r.out]);
        let s = 0;
        for (let i = 0; i < T * B * H; i++) s += r.out[r.outOff + i] * dy[i];
        return s;
      };
      await loss();
      for (const p of rnn.parameters()) p.zeroGrad();
      rnn.backward(dy, 0, null, null, true);
      await syncHost(be);
      const eps = 1e-2;
      for (const p of rnn.parameters()) {
        const analytic = Float64Array.from(p.grad);
        for (let k = 0; k < 4; k++) {
          const i = rng.int(p.size), old = p.data[i];
          p.data[i] = old + eps; be.hostWrote?.(p.data); const lp = await loss();
          p.data[i] = old - eps; be.hostWrote?.(p.data); const lm = await loss();
          p.data[i] = old; be.hostWrote?.(p.data);
          const num = (lp - lm) / (2 * eps), a = analytic[i];
          assert.ok(Math.abs(a - num) <= 2e-3 + 2e-2 * Math.abs(a), `${p.name}[${i}]: analytic ${a} vs numeric ${num}`);
        }
      }
    });
  }

  const tiny: TrainOptions = { batch: 4, bptt: 16, lr: 2e-3, clip: 0.5, optimizer: 'adam', minutes: 0, epochs: 0, maxSteps: 0, evalSeconds: 0, seed: 1, out: null };
  for (const cell of ['lstm', 'gru', 'rnn'] as CellKind[]) {
    test(`${cell} char LM: 15 training steps (Adam, clipping) and validation equal the reference's`, async () => {
      const text = new TextEncoder().encode('the quick brown fox jumps over the lazy dog. '.repeat(40));
      const ids = Int32Array.from(text);
      const train = ids.subarray(0, 1500), valid = ids.subarray(1500);
      const config = { cell, vocabSize: 256, embedding: 8, hidden: 12, layers: 2, dropout: 0.1 };
      const runOn = async (b: Backend): Promise<{ losses: number[]; bpc: number }> => {
        const tr = new Trainer(b, config, new ByteVocab(), train, valid, tiny);
        tr.model.resetState(tiny.batch);
        const losses: number[] = [];
        for (let i = 0; i < 15; i++) losses.push(await tr.stepAsync());
        return { losses, bpc: (await tr.validate())!.bpc };
      };
      const want = await runOn(new JsBackend('float32')), got = await runOn(be);
      close('losses', got.losses, want.losses, 1e-4);
      assert.ok(Math.abs(got.bpc - want.bpc) <= 1e-4, `validation bpc ${got.bpc} vs ${want.bpc}`);
    });

    test(`${cell} char LM: sampling on the device draws the reference's tokens`, async () => {
      const config = { cell, vocabSize: 40, embedding: 6, hidden: 16, layers: 2, dropout: 0 };
      const a = new CharLM(be, config, 9), b = new CharLM(new JsBackend('float32'), config, 9);
      const opts = { prime: Int32Array.of(3, 7), length: 60, temperature: 0.8, seed: 4 };
      const got: number[] = [];
      for await (const id of sampleIdsAsync(a, opts)) got.push(id);
      const want = [...sampleIds(b, opts)];
      assert.deepEqual(got, want);
      await syncHost(be, [a.h]);
      close('final state', a.h, b.h, 1e-5);
    });
  }

  test('rnnkit train --backend webgpu: 10 steps + --resume 10 steps == 20 steps, every saved value bit for bit', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rnnkit-webgpu-'));
    const data = join(dir, 'text.txt');
    writeFileSync(data, 'It was the best of times, it was the worst of times, it was the age of wisdom. '.repeat(30));
    const args = ['train', '--data', data, '--hidden', '12', '--embedding', '6', '--layers', '2', '--batch', '4', '--bptt', '16', '--minutes', '0',
      '--dropout', '0.2', '--eval-every', '1000', '--backend', 'webgpu', '--json'];
    const cli = (...a: string[]): void => {
      const r = spawnSync(process.execPath, [main, ...args, ...a], { encoding: 'utf8', timeout: 120_000 });
      assert.equal(r.status, 0, r.stderr);
    };
    cli('--steps', '20', '--out', join(dir, 'a.safetensors'));
    cli('--steps', '10', '--out', join(dir, 'b.safetensors'));
    cli('--steps', '20', '--resume', join(dir, 'b.last.safetensors'), '--out', join(dir, 'b.safetensors'));
    const a = decodeSafetensors(readFileSync(join(dir, 'a.last.safetensors')), 'a'), b = decodeSafetensors(readFileSync(join(dir, 'b.last.safetensors')), 'b');
    assert.deepEqual([...a.tensors.keys()].sort(), [...b.tensors.keys()].sort());
    assert.ok(a.tensors.has('optimizer.exp_avg.rnn.weight_hh_l1'), 'optimizer state saved');
    for (const [k, t] of a.tensors) assert.deepEqual(Array.from(b.tensors.get(k)!.data), Array.from(t.data), k);
  });

  test('bad use gets a clear error', () => {
    const m = new CharLM(be, { cell: 'lstm', vocabSize: 10, embedding: 4, hidden: 5, layers: 1, dropout: 0 });
    assert.throws(() => [...sampleIds(m, { prime: Int32Array.of(1), length: 2, temperature: 1 })], /use sampleIdsAsync/);
    assert.throws(() => be.sumSquares(3, be.alloc(3), 0), /sumSquares would need a read from the device/);
    // models whose layers read buffers on the host between kernels are refused, not silently wrong
    assert.throws(() => windowLM(be, 10), /runs on the wasm or js backend, not on webgpu/);
    assert.throws(() => m.forward(Int32Array.of(1, 12), 2, 1, false), /id 12 at position 1 is outside \[0, 10\)/);
    const max = (be as WebGPUBackend).device.limits.maxStorageBufferBindingSize;
    if (max < 2 ** 31) assert.throws(() => be.alloc(max / 4 + 4), /over this device's maxStorageBufferBindingSize .*smaller batch x steps/);
  });
});
