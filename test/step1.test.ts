// The batch-1 inference path (Backend.step1*, src/models/step1.ts) against the general path
// (CharLM.forward with T = 1, B = 1): sampling 200 tokens with a fixed seed through both must give the
// same ids and logits within 1e-5, for every cell, 1 and 2 layers, odd sizes (padding), on the reference
// backend and on the wasm backend at 1 and 2 threads (the 2-thread runs large enough to be split, once
// with all chunks left to the worker threads).

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend } from '../src/backend/backend.js';
import { CharLM, type CellKind } from '../src/models/charlm.js';
import { hasStep1 } from '../src/models/step1.js';
import { sampleIds } from '../src/train/sample.js';
import { Rng } from '../src/util/rng.js';
import { testBackends, type NamedBackend } from './backends.js';

interface Run { ids: number[]; logits: Float64Array[]; h: number[]; c: number[] }

function sample(model: CharLM, path: 'auto' | 'general', prime: Int32Array, length: number, seed: number): Run {
  const V = model.config.vocabSize, logits: Float64Array[] = [], ids: number[] = [];
  const onLogits = (l: ArrayLike<number>, off: number) => {
    const row = new Float64Array(V);
    for (let j = 0; j < V; j++) row[j] = l[off + j];
    logits.push(row);
  };
  for (const id of sampleIds(model, { prime, length, temperature: 0.8, seed, path, onLogits })) ids.push(id);
  return { ids, logits, h: Array.from(model.h), c: Array.from(model.c) };
}

function agree(fast: Run, general: Run, what: string): void {
  assert.deepEqual(fast.ids, general.ids, `${what}: sampled ids`);
  assert.equal(fast.logits.length, general.logits.length);
  let worst = 0;
  for (let t = 0; t < fast.logits.length; t++) {
    for (let j = 0; j < fast.logits[t].length; j++) worst = Math.max(worst, Math.abs(fast.logits[t][j] - general.logits[t][j]));
  }
  assert.ok(worst <= 1e-5, `${what}: logits differ by ${worst}`);
  for (const [a, b, n] of [[fast.h, general.h, 'h'], [fast.c, general.c, 'c']] as const) {
    assert.equal(a.length, b.length);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5, `${what}: final ${n}[${i}] ${a[i]} vs ${b[i]}`);
  }
}

/** A model whose weights are larger than the default init (so that the state moves and the logits spread). */
function model(be: Backend, cell: CellKind, layers: number, hidden: number, V: number, seed: number): CharLM {
  const m = new CharLM(be, { cell, vocabSize: V, embedding: 13, hidden, layers, dropout: 0 }, seed);
  const rng = new Rng(seed + 100);
  for (const p of m.parameters()) {
    if (p.name.startsWith('bias')) for (let i = 0; i < p.size; i++) p.data[i] = rng.uniform(-0.5, 0.5);
  }
  for (let i = 0; i < m.decoder.weight.size; i++) m.decoder.weight.data[i] *= 20;
  return m;
}

const cases: [CellKind, number, number][] = [
  ['lstm', 1, 37], ['lstm', 2, 130], ['gru', 1, 30], ['gru', 2, 130], ['rnn', 1, 33], ['rnn', 2, 130], ['rnn_relu', 2, 21],
];

const backends: NamedBackend[] = [...await testBackends()];
try {
  const { createWasmBackend } = await import('../src/backend/wasm.js');
  backends.push({ label: 'wasm threads=2 workers only, plain SIMD', make: () => createWasmBackend({ threads: 2, relaxed: false, mainThreadComputes: false }) });
} catch { /* no wasm here: testBackends said why */ }

for (const nb of backends) {
  describe(`batch-1 sampling path on ${nb.label}`, async () => {
    const be = await nb.make();
    after(() => be.dispose());
    for (const [cell, layers, hidden] of cases) {
      test(`${cell} ${layers}x${hidden}: 200 tokens, the same ids and logits as the general path`, () => {
        const m = model(be, cell, layers, hidden, 97, layers * 100 + hidden);
        assert.ok(hasStep1(m), 'the model has the batch-1 path');
        const prime = Int32Array.of(3, 96, 0, 41);
        agree(sample(m, 'auto', prime, 200, 7), sample(m, 'general', prime, 200, 7), `${cell} ${layers}x${hidden}`);
      });
    }

    test('the plan sees weights changed between calls; the general path stays selectable', () => {
      const m = model(be, 'lstm', 2, 40, 50, 9);
      const prime = Int32Array.of(1);
      const before = sample(m, 'auto', prime, 30, 3);
      for (const p of m.parameters()) for (let i = 0; i < p.size; i += 7) p.data[i] *= -1.5;
      const fast = sample(m, 'auto', prime, 30, 3);
      agree(fast, sample(m, 'general', prime, 30, 3), 'after the weights changed');
      assert.notDeepEqual(fast.logits[0], before.logits[0]);
      // each input of the layer-0 table alone, then only the weights the table does not depend on
      for (const name of ['encoder.weight', 'rnn.weight_ih_l0', 'rnn.bias_ih_l0', 'rnn.bias_hh_l0', 'rnn.weight_hh_l0', 'rnn.weight_ih_l1', 'decoder.weight', 'decoder.bias']) {
        const p = m.params.get(name)!;
        for (let i = 0; i < p.size; i++) p.data[i] += 0.05 * (((i * 7919) % 13) - 6) / 6;
        agree(sample(m, 'auto', prime, 30, 3), sample(m, 'general', prime, 30, 3), `after ${name} changed`);
      }
    });

    test('models without the batch-1 path (norm, dilation) sample through the general path', () => {
      for (const extra of [{ norm: 'layer' as const }, { dilation: [1, 2] }]) {
        const m = new CharLM(be, { cell: 'lstm', vocabSize: 20, embedding: 5, hidden: 8, layers: 2, dropout: 0, ...extra }, 1);
        assert.equal(hasStep1(m), false);
        const a = sample(m, 'auto', Int32Array.of(2), 20, 1), b = sample(m, 'general', Int32Array.of(2), 20, 1);
        assert.deepEqual(a.ids, b.ids);
      }
    });

    test('a bad prime id is one clear error', () => {
      const m = model(be, 'gru', 1, 8, 10, 1);
      assert.throws(() => [...sampleIds(m, { prime: Int32Array.of(2, 10), length: 3, temperature: 1 })], /id 10 at position 1 is outside \[0, 10\)/);
    });
  });
}
