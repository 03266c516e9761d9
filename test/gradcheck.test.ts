// Finite-difference gradient checks in float64 for every recurrent cell, 1 and 2 layers, with non-zero
// initial states, through embedding, linear and softmax cross-entropy.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsBackend } from '../src/backend/js.js';
import { CharLM, type CellKind } from '../src/models/charlm.js';
import { RecurrentStack, type RecurrentOptions, type RnnMode } from '../src/layers/recurrent.js';
import { Rng } from '../src/util/rng.js';
import { checkGradient, checkStackGradients } from './helpers.js';

const be = new JsBackend('float64');

for (const mode of ['LSTM', 'GRU', 'RNN_TANH', 'RNN_RELU'] as RnnMode[]) {
  for (const L of [1, 2]) {
    test(`gradcheck ${mode} stack, ${L} layer(s), non-zero initial state`, () => {
      const T = 4, B = 3, I = 5, H = 6;
      const rng = new Rng(7);
      const rnn = new RecurrentStack(be, mode, { inputSize: I, hiddenSize: H, numLayers: L, seed: 3 });
      const x = be.alloc(T * B * I).map(() => rng.normal()) as Float64Array;
      const h0 = be.alloc(L * B * H).map(() => rng.uniform(-0.8, 0.8)) as Float64Array;
      const c0 = be.alloc(L * B * H).map(() => rng.uniform(-0.8, 0.8)) as Float64Array;
      const dy = be.alloc(T * B * H).map(() => rng.uniform(-1, 1)) as Float64Array;
      const dhN = be.alloc(L * B * H).map(() => rng.uniform(-1, 1)) as Float64Array;
      const dcN = be.alloc(L * B * H).map(() => rng.uniform(-1, 1)) as Float64Array;
      const lstm = mode === 'LSTM';
      const loss = (): number => {
        const r = rnn.forward(x, 0, T, B, h0, lstm ? c0 : null, true);
        let s = 0;
        for (let i = 0; i < T * B * H; i++) s += r.out[r.outOff + i] * dy[i];
        for (let i = 0; i < L * B * H; i++) s += r.hN[i] * dhN[i] + (r.cN ? r.cN[i] * dcN[i] : 0);
        return s;
      };
      loss();
      for (const p of rnn.parameters()) p.zeroGrad();
      const g = rnn.backward(dy, 0, dhN, lstm ? dcN : null, true);
      const dx = Float64Array.from(g.dx!), dh0 = Float64Array.from(g.dh0), dc0 = g.dc0 ? Float64Array.from(g.dc0) : null;
      const grads = rnn.parameters().map((p) => Float64Array.from(p.grad));
      rnn.parameters().forEach((p, k) => checkGradient(p.name, p.data, grads[k], loss, rng, 12));
      checkGradient('x', x, dx, loss, rng, 12);
      checkGradient('h0', h0, dh0, loss, rng, 12);
      if (dc0) checkGradient('c0', c0, dc0, loss, rng, 12);
    });
  }
}

for (const cell of ['lstm', 'gru', 'rnn', 'rnn_relu'] as CellKind[]) {
  for (const L of [1, 2]) {
    test(`gradcheck char LM (${cell}, ${L} layer(s)): embedding -> rnn -> linear -> softmax cross-entropy`, () => {
      const V = 9, T = 5, B = 2;
      const model = new CharLM(be, { cell, vocabSize: V, embedding: 4, hidden: 5, layers: L, dropout: 0 }, 11);
      const rng = new Rng(5);
      // Larger weights than the default init, so that every gradient is well above finite-difference noise.
      for (const p of model.parameters()) p.uniform(rng, -0.6, 0.6);
      const ids = Int32Array.from({ length: T * B }, () => rng.int(V));
      const targets = Int32Array.from({ length: T * B }, () => rng.int(V));
      model.resetState(B);
      for (let i = 0; i < model.h.length; i++) model.h[i] = rng.uniform(-0.5, 0.5);
      for (let i = 0; i < model.c.length; i++) model.c[i] = rng.uniform(-0.5, 0.5);
      const h0 = Float64Array.from(model.h), c0 = Float64Array.from(model.c);
      const loss = (): number => {
        model.h.set(h0); model.c.set(c0);
        model.forward(ids, T, B, false);
        return model.loss(targets) * T * B; // summed cross-entropy
      };
      model.h.set(h0); model.c.set(c0);
      for (const p of model.parameters()) p.zeroGrad();
      model.forward(ids, T, B, true);
      const l = model.backward(targets) * T * B;
      for (const p of model.parameters()) be.scale(p.size, T * B, p.grad, 0);
      assert.ok(Math.abs(l - loss()) < 1e-12, 'backward returns the forward loss');
      const grads = [...model.params].map(([, p]) => Float64Array.from(p.grad));
      [...model.params].forEach(([name, p], k) => checkGradient(name, p.data, grads[k], loss, rng, 12));
    });
  }
}

// Bidirectional, dilated, strided layers and dropout between layers (masks replayed from a saved RNG state).
const variants: { name: string; opts: Partial<RecurrentOptions>; T: number }[] = [
  { name: 'bidirectional, 2 layers', opts: { numLayers: 2, bidirectional: true }, T: 4 },
  { name: 'dilation [1, 2]', opts: { numLayers: 2, dilation: [1, 2] }, T: 6 },
  { name: 'stride [2, 1], dilation [1, 3]', opts: { numLayers: 2, stride: [2, 1], dilation: [1, 3] }, T: 11 },
  { name: 'bidirectional + stride 2 + dilation 2', opts: { numLayers: 2, bidirectional: true, stride: [1, 2], dilation: [2, 1] }, T: 8 },
  { name: 'dropout 0.4 between 3 layers', opts: { numLayers: 3, dropout: 0.4 }, T: 4 },
  { name: 'dropout 0.4, same mask over time, bidirectional', opts: { numLayers: 2, dropout: 0.4, dropoutSameMask: true, bidirectional: true }, T: 4 },
];
for (const mode of ['LSTM', 'GRU', 'RNN_TANH'] as RnnMode[]) {
  for (const v of variants) {
    test(`gradcheck ${mode} ${v.name}`, () => checkStackGradients(be, mode, v.opts, {
      T: v.T, B: 2, I: 3, H: 4, rngSeed: 9, stackSeed: 4, samples: { params: 8, x: 16, state: 12 },
    }));
  }
}
