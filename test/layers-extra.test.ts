// EmbeddingBag (hashed n-grams), Conv1d (dilated, padded, causal), dot attention and the MLP:
// float64 finite-difference gradient checks, and PyTorch 1.13 reference values (test/fixtures/
// embeddingbag.json, conv1d.json, attention.json, from scripts/make_fixtures_tasks.py) on every backend.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Backend, Buf } from '../src/backend/backend.js';
import { JsBackend } from '../src/backend/js.js';
import { EmbeddingBag, type BagMode } from '../src/layers/embeddingbag.js';
import { Conv1d, type Conv1dPadding } from '../src/layers/conv1d.js';
import { AdditiveAttention, DotAttention } from '../src/layers/attention.js';
import { MLP } from '../src/layers/mlp.js';
import { OneHot } from '../src/layers/onehot.js';
import { wordNgramIds } from '../src/text/ngrams.js';
import { Rng } from '../src/util/rng.js';
import { testBackends } from './backends.js';
import { checkGradient, loadFixture as load } from './helpers.js';

/** |got - want| <= tol * max(1, |want|) everywhere (the fixtures README's comparison). */
function close(what: string, got: ArrayLike<number>, want: number[], tol = 1e-5): void {
  assert.equal(got.length, want.length, `${what}: length ${got.length} != ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    assert.ok(d <= tol * Math.max(1, Math.abs(want[i])), `${what}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

const f64 = new JsBackend('float64');

/** Central differences on sampled coordinates of buf (16 by default) against the analytic gradient. */
const gradcheck = (name: string, buf: Buf, analytic: ArrayLike<number>, f: () => number, rng: Rng, samples = 16): void =>
  checkGradient(name, buf, analytic, f, rng, samples, 1e-6);

const randBuf = (be: Backend, n: number, rng: Rng, lo = -1, hi = 1): Buf => { const b = be.alloc(n); for (let i = 0; i < n; i++) b[i] = rng.uniform(lo, hi); return b; };
const dotWith = (a: ArrayLike<number>, aOff: number, b: ArrayLike<number>, n: number): number => { let s = 0; for (let i = 0; i < n; i++) s += a[aOff + i] * b[i]; return s; };

describe('gradient checks (float64)', () => {
  for (const mode of ['sum', 'mean', 'sqrt'] as BagMode[]) {
    test(`EmbeddingBag mode=${mode} on hashed n-grams, with an empty bag; touched rows only`, () => {
      const rng = new Rng(1), num = 53, dim = 4;
      const bag = new EmbeddingBag(f64, num, dim, mode, rng);
      const words = ['река', 'river', 'Fluss', '', 'ab'];
      const idList: number[] = [], offsets: number[] = [];
      for (const w of words) { offsets.push(idList.length); if (w) idList.push(...wordNgramIds(w, { buckets: num })); }
      const ids = Int32Array.from(idList), offs = Int32Array.from(offsets);
      const out = f64.alloc(words.length * dim), dout = randBuf(f64, words.length * dim, rng);
      const loss = (): number => { bag.forward(ids, offs, out, 0); return dotWith(out, 0, dout, out.length); };
      loss();
      for (let c = 0; c < dim; c++) assert.equal(out[3 * dim + c], 0, 'empty bag -> zero vector');
      bag.backward(dout, 0);
      const touched = new Set(bag.touchedRows());
      assert.deepEqual(touched, new Set(idList));
      for (let r = 0; r < num; r++) if (!touched.has(r)) for (let c = 0; c < dim; c++) assert.equal(bag.weight.grad[r * dim + c], 0);
      const g = Float64Array.from(bag.weight.grad);
      gradcheck('weight', bag.weight.data, g, loss, rng, 40);
      bag.zeroGradTouched();
      assert.ok(bag.weight.grad.every((v) => v === 0), 'zeroGradTouched clears the gradient');
      assert.equal(bag.touchedRows().length, 0);
    });
  }

  for (const [k, d, pad, T] of [[3, 2, 0, 9], [3, 2, 'causal', 6], [2, 3, 3, 5], [5, 1, 'same', 7], [1, 1, 0, 4]] as [number, number, Conv1dPadding, number][]) {
    test(`Conv1d k=${k} dilation=${d} padding=${pad}`, () => {
      const rng = new Rng(2), B = 2, I = 3, O = 4;
      const conv = new Conv1d(f64, { inChannels: I, outChannels: O, kernelSize: k, dilation: d, padding: pad }, rng);
      const Tout = conv.outLength(T);
      if (pad === 'causal' || pad === 'same') assert.equal(Tout, T);
      const x = randBuf(f64, T * B * I, rng), y = f64.alloc(Tout * B * O), dy = randBuf(f64, Tout * B * O, rng);
      const loss = (): number => { conv.forward(x, 0, T, B, y, 0); return dotWith(y, 0, dy, y.length); };
      loss();
      for (const p of conv.parameters()) p.zeroGrad();
      const dx = Float64Array.from(conv.backward(dy, 0, true)!.subarray(0, T * B * I));
      const gw = Float64Array.from(conv.weight.grad), gb = Float64Array.from(conv.bias!.grad);
      gradcheck('weight', conv.weight.data, gw, loss, rng, 30);
      gradcheck('bias', conv.bias!.data, gb, loss, rng);
      gradcheck('x', x, dx, loss, rng, 30);
      if (pad === 'causal') {
        // causality: changing the last input step changes only the last output step
        loss(); const before = Float64Array.from(y);
        x[(T - 1) * B * I] += 1; conv.forward(x, 0, T, B, y, 0);
        for (let i = 0; i < (T - 1) * B * O; i++) assert.equal(y[i], before[i]);
      }
    });
  }

  test('DotAttention with source lengths (masked)', () => {
    const rng = new Rng(3), T = 3, S = 5, B = 3, H = 4, lens = Int32Array.from([5, 2, 1]);
    const att = new DotAttention(f64, H);
    const q = randBuf(f64, T * B * H, rng), k = randBuf(f64, S * B * H, rng), dctx = randBuf(f64, T * B * H, rng);
    const loss = (): number => dotWith(att.forward(q, 0, T, k, 0, S, B, lens), 0, dctx, T * B * H);
    loss();
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) {
      let s = 0;
      for (let j = 0; j < S; j++) { const w = att.weights[(b * T + t) * S + j]; s += w; if (j >= lens[b]) assert.equal(w, 0); }
      assert.ok(Math.abs(s - 1) < 1e-12, 'weights sum to 1');
    }
    const g = att.backward(dctx, 0);
    const dq = Float64Array.from(g.dq.subarray(0, T * B * H)), dk = Float64Array.from(g.dk.subarray(0, S * B * H));
    gradcheck('q', q, dq, loss, rng, 30);
    gradcheck('k', k, dk, loss, rng, 40);
  });

  test('AdditiveAttention (Bahdanau) with source lengths: inputs and parameters', () => {
    const rng = new Rng(8), T = 3, S = 4, B = 2, H = 5, A = 3, lens = Int32Array.from([4, 2]);
    const att = new AdditiveAttention(f64, H, A, rng);
    for (const p of att.parameters()) p.uniform(rng, -1, 1);
    const q = randBuf(f64, T * B * H, rng), k = randBuf(f64, S * B * H, rng), dctx = randBuf(f64, T * B * H, rng);
    const loss = (): number => dotWith(att.forward(q, 0, T, k, 0, S, B, lens), 0, dctx, T * B * H);
    loss();
    for (let t = 0; t < T; t++) for (let j = lens[1]; j < S; j++) assert.equal(att.weights[(1 * T + t) * S + j], 0);
    for (const p of att.parameters()) p.zeroGrad();
    const g = att.backward(dctx, 0);
    const dq = Float64Array.from(g.dq.subarray(0, T * B * H)), dk = Float64Array.from(g.dk.subarray(0, S * B * H));
    for (const [name, p] of att.params) gradcheck(name, p.data, Float64Array.from(p.grad), loss, rng, 12);
    gradcheck('q', q, dq, loss, rng, 20);
    gradcheck('k', k, dk, loss, rng, 30);
  });

  test('MLP (relu and tanh) through Linear layers', () => {
    for (const act of ['relu', 'tanh'] as const) {
      const rng = new Rng(4), n = 5;
      const mlp = new MLP(f64, [6, 7, 5, 3], act, rng);
      assert.deepEqual([...mlp.params.keys()], ['0.weight', '0.bias', '2.weight', '2.bias', '4.weight', '4.bias']);
      const x = randBuf(f64, n * 6, rng), dy = randBuf(f64, n * 3, rng);
      const loss = (): number => dotWith(mlp.forward(n, x, 0), 0, dy, n * 3);
      loss();
      for (const p of mlp.parameters()) p.zeroGrad();
      const dx = Float64Array.from(mlp.backward(dy, 0, true)!.subarray(0, n * 6));
      for (const [name, p] of mlp.params) gradcheck(name, p.data, Float64Array.from(p.grad), loss, rng, 10);
      gradcheck('x', x, dx, loss, rng, 10);
    }
  });

  test('OneHot: identity rows, padding ids give zero rows', () => {
    const oh = new OneHot(f64, 4), out = f64.alloc(3 * 4);
    oh.forward(3, Int32Array.from([2, -1, 0]), out, 0);
    assert.deepEqual(Array.from(out), [0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
    assert.throws(() => oh.forward(1, Int32Array.from([4]), out, 0), /outside/);
  });
});

const backends = await testBackends();
for (const nb of backends) {
  describe(`PyTorch reference (task layers) on ${nb.label}`, async () => {
    const be = await nb.make();
    after(() => be.dispose());

    test('embeddingbag.json: nn.EmbeddingBag sum / mean / sum with 1/sqrt(n) per-sample weights', () => {
      const fx = load('embeddingbag.json');
      // the fixture's ids are the FNV-1a hashes computed in Python: ours must agree
      fx.words.forEach((w: string, i: number) => {
        const s = fx.offsets[i], e = i + 1 < fx.words.length ? fx.offsets[i + 1] : fx.ids.length;
        assert.deepEqual(Array.from(w ? wordNgramIds(w, { buckets: fx.num }) : []), fx.ids.slice(s, e), `n-gram ids of '${w}'`);
      });
      for (const mode of ['sum', 'mean', 'sqrt'] as BagMode[]) {
        const bag = new EmbeddingBag(be, fx.num, fx.dim, mode, new Rng(1));
        bag.weight.data.set(fx.weight); bag.weight.zeroGrad();
        const out = be.alloc(fx.words.length * fx.dim), dout = be.alloc(out.length);
        dout.set(fx.dout);
        bag.forward(Int32Array.from(fx.ids), Int32Array.from(fx.offsets), out, 0);
        close(`${mode} out`, out, fx.modes[mode].out);
        bag.backward(dout, 0);
        close(`${mode} grad weight`, bag.weight.grad, fx.modes[mode].grad_weight);
      }
    });

    test('conv1d.json: nn.Conv1d with dilation, padding, causal padding', () => {
      for (const c of load('conv1d.json').cases) {
        const conv = new Conv1d(be, { inChannels: c.inChannels, outChannels: c.outChannels, kernelSize: c.kernelSize, dilation: c.dilation, padding: c.padding }, new Rng(1));
        assert.deepEqual(conv.weight.shape, c.weight.shape);
        conv.weight.data.set(c.weight.data); conv.bias!.data.set(c.bias);
        for (const p of conv.parameters()) p.zeroGrad();
        assert.equal(conv.outLength(c.T), c.Tout);
        const x = be.alloc(c.x.length), y = be.alloc(c.y.length), dy = be.alloc(c.dy.length);
        x.set(c.x); dy.set(c.dy);
        conv.forward(x, 0, c.T, c.B, y, 0);
        const tag = `k=${c.kernelSize} d=${c.dilation} pad=${c.padding}`;
        close(`${tag} y`, y, c.y);
        const dx = conv.backward(dy, 0, true)!;
        close(`${tag} grad weight`, conv.weight.grad, c.grad_weight);
        close(`${tag} grad bias`, conv.bias!.grad, c.grad_bias);
        close(`${tag} dx`, dx.subarray(0, c.dx.length), c.dx);
      }
    });

    test('attention.json: masked dot attention (bmm + softmax) forward and backward', () => {
      const fx = load('attention.json');
      const att = new DotAttention(be, fx.H);
      const q = be.alloc(fx.q.length), k = be.alloc(fx.k.length), d = be.alloc(fx.dcontext.length);
      q.set(fx.q); k.set(fx.k); d.set(fx.dcontext);
      const ctx = att.forward(q, 0, fx.T, k, 0, fx.S, fx.B, Int32Array.from(fx.srcLen));
      close('context', ctx.subarray(0, fx.context.length), fx.context);
      close('weights', att.weights.subarray(0, fx.weights.length), fx.weights);
      const g = att.backward(d, 0);
      close('dq', g.dq.subarray(0, fx.dq.length), fx.dq);
      close('dk', g.dk.subarray(0, fx.dk.length), fx.dk);
    });

    test('attention_additive.json: masked Bahdanau attention (Linear, tanh, Linear(A, 1)) forward and backward', () => {
      const fx = load('attention_additive.json');
      const att = new AdditiveAttention(be, fx.H, fx.A, new Rng(1));
      for (const [name, p] of att.params) { p.data.set(fx.params[name]); p.zeroGrad(); }
      const q = be.alloc(fx.q.length), k = be.alloc(fx.k.length), d = be.alloc(fx.dcontext.length);
      q.set(fx.q); k.set(fx.k); d.set(fx.dcontext);
      const ctx = att.forward(q, 0, fx.T, k, 0, fx.S, fx.B, Int32Array.from(fx.srcLen));
      close('context', ctx.subarray(0, fx.context.length), fx.context);
      close('weights', att.weights.subarray(0, fx.weights.length), fx.weights);
      const g = att.backward(d, 0);
      close('dq', g.dq.subarray(0, fx.dq.length), fx.dq);
      close('dk', g.dk.subarray(0, fx.dk.length), fx.dk);
      for (const [name, p] of att.params) close(`grad ${name}`, p.grad, fx.grads[name]);
    });
  });
}
