// PyTorch parity: outputs, final states and every gradient against fixtures written by
// scripts/make_fixtures.py (PyTorch 1.13, float64), to <= 1e-5 absolute in float32, on every backend.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Backend, Buf } from '../src/backend/backend.js';
import { RecurrentStack, type RnnMode } from '../src/layers/recurrent.js';
import { CharLM, type CellKind } from '../src/models/charlm.js';
import { Adam, SGD, clipGradNorm } from '../src/optim/optim.js';
import { Param } from '../src/layers/param.js';
import { testBackends } from './backends.js';

// Fixtures live in the source tree; compiled tests run from dist/test.
const here = dirname(fileURLToPath(import.meta.url));
const fixtureDir = [join(here, 'fixtures'), join(here, '..', '..', 'test', 'fixtures')].find((d) => {
  try { return readdirSync(d).length > 0; } catch { return false; }
})!;
const load = (f: string): any => JSON.parse(readFileSync(join(fixtureDir, f), 'utf8'));
const TOL = 1e-5;

function close(what: string, got: ArrayLike<number>, want: number[], tol = TOL): void {
  assert.equal(got.length, want.length, `${what}: length ${got.length} != ${want.length}`);
  let worst = 0, at = -1;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= worst)) { worst = d; at = i; }
  }
  assert.ok(worst <= tol, `${what}: max abs error ${worst} at ${at} (got ${got[at]}, want ${want[at]})`);
}

const modeOf: Record<string, RnnMode> = { lstm: 'LSTM', gru: 'GRU', rnn_tanh: 'RNN_TANH', rnn_relu: 'RNN_RELU' };
const cellOf: Record<string, CellKind> = { lstm: 'lstm', gru: 'gru', rnn_tanh: 'rnn', rnn_relu: 'rnn_relu' };

function fill(be: Backend, data: number[]): Buf {
  const b = be.alloc(data.length);
  b.set(data);
  return b;
}

const backends = await testBackends();
for (const nb of backends) {
  describe(`PyTorch parity on ${nb.label}`, async () => {
    const be = await nb.make();
    after(() => be.dispose());

    for (const file of readdirSync(fixtureDir).filter((f) => f.startsWith('rnn_')).sort()) {
      test(file, () => {
        const fx = load(file);
        const { T, B, numLayers: L, hiddenSize: H } = fx;
        const rnn = new RecurrentStack(be, modeOf[fx.cell], { inputSize: fx.inputSize, hiddenSize: H, numLayers: L });
        for (const p of rnn.parameters()) { p.data.set(fx.params[p.name].data); p.zeroGrad(); }
        const lstm = fx.cell === 'lstm';
        const x = fill(be, fx.x), h0 = fill(be, fx.h0), c0 = lstm ? fill(be, fx.c0) : null;
        const r = rnn.forward(x, 0, T, B, h0, c0, true);
        close('out', r.out.subarray(r.outOff, r.outOff + T * B * H), fx.out);
        close('hN', r.hN, fx.hN);
        if (lstm) close('cN', r.cN!, fx.cN);
        const g = rnn.backward(fill(be, fx.dout), 0, fill(be, fx.dhN), lstm ? fill(be, fx.dcN) : null, true);
        for (const p of rnn.parameters()) close(`grad ${p.name}`, p.grad, fx.grads[p.name]);
        close('dx', g.dx!.subarray(0, fx.dx.length), fx.dx);
        close('dh0', g.dh0, fx.dh0);
        if (lstm) close('dc0', g.dc0!, fx.dc0);
      });
    }

    for (const file of readdirSync(fixtureDir).filter((f) => f.startsWith('charlm_')).sort()) {
      test(file, () => {
        const fx = load(file);
        const { T, B, V } = fx;
        const model = new CharLM(be, { cell: cellOf[fx.cell], vocabSize: V, embedding: fx.E, hidden: fx.H, layers: fx.L, dropout: 0 });
        for (const [name, p] of model.params) { p.data.set(fx.params[name].data); p.zeroGrad(); }
        model.resetState(B);
        model.h.set(fx.h0);
        if (fx.c0) model.c.set(fx.c0);
        const logits = model.forward(Int32Array.from(fx.ids), T, B, true);
        close('logits', logits.subarray(0, T * B * V), fx.logits);
        close('hN', model.h, fx.hN);
        if (fx.cN) close('cN', model.c, fx.cN);
        const loss = model.backward(Int32Array.from(fx.targets));
        assert.ok(Math.abs(loss - fx.loss) <= TOL, `loss ${loss} vs ${fx.loss}`);
        for (const [name, p] of model.params) close(`grad ${name}`, p.grad, fx.grads[name]);
      });
    }

    test('optim.json: clip_grad_norm_, Adam, SGD with momentum', () => {
      const fx = load('optim.json');
      const make = (): Param[] => fx.params.map((q: any, i: number) => {
        const p = new Param(be, q.name, q.shape);
        p.data.set(q.data); p.grad.set(fx.grads[i]);
        return p;
      });
      let ps = make();
      const norm = clipGradNorm(be, ps, fx.clip.max_norm);
      assert.ok(Math.abs(norm - fx.clip.total_norm) <= 1e-5, `total norm ${norm} vs ${fx.clip.total_norm}`);
      ps.forEach((p, i) => close(`clipped ${p.name}`, p.grad, fx.clip.grads[i]));
      ps = make();
      const adam = new Adam(be, ps, { lr: fx.adam.lr, betas: fx.adam.betas, eps: fx.adam.eps, weightDecay: fx.adam.weight_decay });
      fx.adam.steps.forEach((want: number[][], s: number) => {
        adam.step();
        ps.forEach((p, i) => close(`adam step ${s + 1} ${p.name}`, p.data, want[i]));
      });
      ps = make();
      const sgd = new SGD(be, ps, { lr: fx.sgd.lr, momentum: fx.sgd.momentum });
      fx.sgd.steps.forEach((want: number[][], s: number) => {
        sgd.step();
        ps.forEach((p, i) => close(`sgd step ${s + 1} ${p.name}`, p.data, want[i]));
      });
    });
  });
}
