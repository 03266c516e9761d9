// The five task shapes: each trains a tiny model for a few seconds on (a slice of) the bundled Wikipedia
// sentences, on a fixed seed, to a result clearly better than chance / the trivial reference. Plus:
// padding does not change a classifier's output, save -> eval gives the same metric, and the baseline LMs
// (window MLP, dilated conv) pass a float64 gradient check and predict the same from a stream cut in batches.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { JsBackend } from '../src/backend/js.js';
import { createBackend } from '../src/backend/index.js';
import { ConvLM, convLMConfig } from '../src/models/conv.js';
import { TASKS, findTask } from '../src/tasks/index.js';
import { padBatch, loadSentences, charErrorRate, editDistance, TaskOptimizer } from '../src/tasks/common.js';
import { EmbeddingBag } from '../src/layers/embeddingbag.js';
import { Linear } from '../src/layers/linear.js';
import { Adam, clipGradNorm } from '../src/optim/optim.js';
import { SeqClassifier } from '../src/tasks/seqclassifier.js';
import { caseLabels, ruleCase } from '../src/tasks/synced.js';
import { addNoise, fragments } from '../src/tasks/seq2seq.js';
import { Rng } from '../src/util/rng.js';
import { WordVocab } from '../src/text/wordvocab.js';

// the fastest backend available here (wasm, one thread; else the reference): these tests train real models
const be = await createBackend({ backend: 'auto', threads: 1 });
const dir = mkdtempSync(join(tmpdir(), 'rnnkit-tasks-'));
const quiet = { minutes: 0, seed: 1, out: null };

test('five task shapes, each with train / evaluate / predict', () => {
  assert.deepEqual(TASKS.map((t) => t.name), ['one-to-one', 'one-to-many', 'many-to-one', 'many-to-many', 'synced']);
  assert.throws(() => findTask('nope'), /unknown task 'nope'.*one-to-one/);
  const s = loadSentences();
  assert.deepEqual([...new Set(s.map((x) => x.lang))].sort(), ['de', 'en', 'ru']);
  assert.ok(s.length > 2000);
});

test('metrics: edit distance, CER, case labels, noise', () => {
  assert.equal(editDistance([1, 2, 3], [1, 3]), 1);
  assert.equal(editDistance([], [1, 2]), 2);
  assert.equal(charErrorRate(['abcd'], ['abed']), 0.25);
  const { lower, labels } = caseLabels('Der Hund, 3 Ёлки.');
  assert.equal(lower, 'der hund, 3 ёлки.');
  assert.deepEqual(Array.from(labels), [1, 0, 0, -1, 1, 0, 0, 0, -1, -1, -1, -1, 1, 0, 0, 0, -1]);
  assert.deepEqual(Array.from(ruleCase('ab. cd')), [1, 0, 0, 0, 1, 0]);
  const rng = new Rng(3), alphabet = ['a', 'b', 'c'];
  const noisy = addNoise('hello world, this is a test', 0.3, alphabet, rng);
  assert.notEqual(noisy, 'hello world, this is a test');
  assert.equal(addNoise('unchanged', 0, alphabet, rng), 'unchanged');
  assert.ok(fragments(['a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h']).every((f) => f.length <= 48));
});

test('one-to-one: bag of hashed n-grams + MLP identifies the language', () => {
  const r = findTask('one-to-one').train(be, { ...quiet, steps: 60, limit: 600 });
  assert.ok(r.value > 0.85 && r.value > r.baseline! + 0.3, `accuracy ${r.value} (majority class ${r.baseline})`);
});

test('one-to-one with word ids (<unk> for unseen words): works, and Russian has the most out-of-vocabulary words', () => {
  const r = findTask('one-to-one').train(be, { ...quiet, steps: 60, model: 'words' });
  assert.ok(r.value > 0.85, `accuracy ${r.value}`);
  const oov = r.test_oov_rate as Record<string, number>;
  assert.ok(oov.ru > oov.en && oov.ru > 0.2, JSON.stringify(oov));
  const v = WordVocab.fromTexts(['a b b c', 'b c'], { minCount: 2 });
  assert.deepEqual(v.words, ['<unk>', 'b', 'c']);
  assert.deepEqual(Array.from(v.encode('B a c d')), [1, 0, 2, 0]);
  assert.deepEqual(WordVocab.fromJSON(JSON.parse(JSON.stringify(v.toJSON()))).words, v.words);
});

test('many-to-one: LSTM language id, saved model evaluates to the same accuracy, predicts', () => {
  const out = join(dir, 'langid.safetensors');
  const task = findTask('many-to-one');
  const r = task.train(be, { ...quiet, steps: 120, limit: 600, hidden: 32, out });
  assert.ok(r.value > 0.75 && r.value > r.baseline! + 0.3, `accuracy ${r.value} (majority class ${r.baseline})`);
  const cm = r.confusion as number[][];
  assert.equal(cm.flat().reduce((a, b) => a + b, 0), r.examples);
  const e = task.evaluate(be, { checkpoint: out, limit: 150 });
  assert.ok(Math.abs(e.value - r.value) < 1e-9, `eval ${e.value} vs train ${r.value}`);
  const p = task.predict(be, out, ['Москва — столица России, крупнейший город страны.']);
  assert.deepEqual(p, ['ru']);
});

for (const model of ['window', 'conv']) {
  test(`many-to-one with the ${model} encoder beats chance`, () => {
    const r = findTask('many-to-one').train(be, { ...quiet, steps: 120, limit: 600, hidden: 32, model });
    assert.ok(r.value > 0.7 && r.value > r.baseline! + 0.25, `accuracy ${r.value} (majority class ${r.baseline})`);
  });
}

test('padding does not change a classifier\'s output (rnn, window, conv)', () => {
  for (const encoder of ['rnn', 'window', 'conv'] as const) {
    const m = new SeqClassifier(be, { encoder, cell: 'lstm', vocabSize: 20, embedding: 6, hidden: 8, classes: 3, kernel: 3, layers: 3 }, 5);
    const a = Int32Array.from([3, 4, 5, 6, 7]), b = Int32Array.from([9, 8, 7, 6, 5, 4, 3, 2, 1, 11, 12]);
    const alone = Array.from(m.forward(padBatch([a], 0), false).subarray(0, 3));
    const batched = Array.from(m.forward(padBatch([b, a], 0), false).subarray(3, 6));
    alone.forEach((v, i) => assert.ok(Math.abs(v - batched[i]) < 1e-5, `${encoder}: ${alone} vs ${batched}`));
  }
});

test('synced: a bidirectional LSTM restores capital letters better than the sentence-start rule', () => {
  const r = findTask('synced').train(be, { ...quiet, steps: 150, limit: 500, hidden: 32, lr: 0.01 });
  assert.ok(r.value > 0.5 && r.value > (r.baseline as number) + 0.05, `F1 ${r.value} (rule ${r.baseline})`);
});

test('one-to-many: words spelled from their n-gram vectors beat the constant answer', () => {
  const r = findTask('one-to-many').train(be, { ...quiet, steps: 300, limit: 3000, hidden: 64, lr: 0.01 });
  assert.ok(r.value < (r.baseline as number) - 0.07, `CER ${r.value} (most frequent word ${r.baseline})`);
});

test('many-to-many: the attention encoder-decoder learns to reproduce and correct fragments; beam search', async () => {
  // short fragments (the first two words of each bundled sentence): attention learns to align in seconds
  const data = join(dir, 'short.tsv');
  writeFileSync(data, loadSentences().map((s) => `${s.lang}\t${s.text.split(' ').slice(0, 2).join(' ')}`).join('\n'));
  const out = join(dir, 'm2m.safetensors');
  const r = findTask('many-to-many').train(be, { ...quiet, data, steps: 600, limit: 1500, hidden: 32, lr: 0.02, batch: 16, out });
  assert.ok(r.value < 0.7, `CER after ${r.value} (before ${r.cer_before}; an untrained decoder is near 1)`);
  // beam search: width 1 is greedy decoding; a wider beam gives well-formed output
  const { Seq2Seq, correct } = await import('../src/tasks/seq2seq.js');
  const { loadTaskModel, charVocabFromJSON } = await import('../src/tasks/common.js');
  const f = loadTaskModel(out, 'many-to-many'), model = new Seq2Seq(be, f.config), vocab = charVocabFromJSON(f.extra.vocab);
  f.restore(model.params);
  const inputs = ['Anarhcism is', 'Die Stadt', 'Москва — стол', 'The sign'];
  const pb = padBatch(inputs.map((x) => vocab.encode(x)), 0);
  const { mem, h0 } = model.encode(pb.ids, pb.lens, pb.T, pb.B, false);
  const greedy = model.dec.greedy(pb.B, h0, null, mem, vocab.size, vocab.size, 20);
  for (let b = 0; b < pb.B; b++) assert.deepEqual(model.dec.beam(1, h0, null, b, mem, vocab.size, vocab.size, 20), greedy[b], `column ${b}`);
  const wide = correct(model, vocab, inputs, 4);
  assert.equal(wide.length, 4);
  assert.ok(wide.every((w) => w.length > 0 && w.length <= 30), JSON.stringify(wide));
});

test('sparse row-wise Adam on an n-gram table equals dense Adam + clipping when every row is touched, and leaves untouched rows alone', () => {
  const f = new JsBackend('float64');
  const make = (): { bag: EmbeddingBag; lin: Linear } => ({ bag: new EmbeddingBag(f, 6, 3, 'mean', new Rng(1)), lin: new Linear(f, 3, 2, new Rng(2)) });
  const a = make(), b = make();
  const sparse = new TaskOptimizer(f, [a.bag.weight, ...a.lin.parameters()], 0.05, 0.5, [a.bag]);
  const dense = new Adam(f, [b.bag.weight, ...b.lin.parameters()], { lr: 0.05 });
  const ids = Int32Array.from([0, 1, 2, 3, 4, 5, 5, 0]), offs = Int32Array.from([0, 3, 6]);
  const run = (m: { bag: EmbeddingBag; lin: Linear }): void => {
    const x = f.alloc(9), y = f.alloc(6);
    m.bag.forward(ids, offs, x, 0);
    m.lin.forward(3, x, 0, y, 0);
    const dx = m.lin.backward(3, x, 0, Float64Array.from([1, -2, 3, 0.5, -1, 2]), 0, true)!;
    m.bag.backward(dx, 0);
  };
  for (let s = 0; s < 3; s++) {
    sparse.zeroGrad(); run(a); sparse.step();
    dense.zeroGrad(); run(b); clipGradNorm(f, dense.params, 0.5); dense.step();
    a.bag.weight.data.forEach((v, i) => assert.ok(Math.abs(v - b.bag.weight.data[i]) < 1e-12, `step ${s} table[${i}]`));
    a.lin.weight.data.forEach((v, i) => assert.ok(Math.abs(v - b.lin.weight.data[i]) < 1e-12, `step ${s} linear[${i}]`));
  }
  // a bag that touches rows 1 and 2 only moves rows 1 and 2
  const before = Float64Array.from(a.bag.weight.data);
  sparse.zeroGrad();
  const x = f.alloc(3), y = f.alloc(2);
  a.bag.forward(Int32Array.from([1, 2]), Int32Array.from([0]), x, 0);
  a.lin.forward(1, x, 0, y, 0);
  a.bag.backward(a.lin.backward(1, x, 0, Float64Array.from([1, 1]), 0, true)!, 0);
  sparse.step();
  for (let r = 0; r < 6; r++) for (let c = 0; c < 3; c++) {
    const moved = a.bag.weight.data[r * 3 + c] !== before[r * 3 + c];
    assert.equal(moved, r === 1 || r === 2, `row ${r}`);
  }
});

test('many-to-many with additive (Bahdanau) attention learns too', () => {
  const data = join(dir, 'short2.tsv');
  writeFileSync(data, loadSentences().map((s) => `${s.lang}\t${s.text.split(' ').slice(0, 2).join(' ')}`).join('\n'));
  const r = findTask('many-to-many').train(be, { ...quiet, data, steps: 600, limit: 1500, hidden: 32, lr: 0.02, batch: 16, model: 'additive' });
  assert.equal(r.attention, 'additive');
  assert.ok(r.value < 0.7, `CER after ${r.value} (before ${r.cer_before})`);
  assert.throws(() => findTask('many-to-many').train(be, { ...quiet, steps: 1, model: 'cosine' }), /dot or additive/);
});

test('every parameter of the nested task models is named (PyTorch-style) and trained', async () => {
  const { BagClassifier } = await import('../src/tasks/bagclassifier.js');
  const { Speller } = await import('../src/tasks/speller.js');
  const { Seq2Seq } = await import('../src/tasks/seq2seq.js');
  const { ngramConfig } = await import('../src/text/ngrams.js');
  const f = new JsBackend('float32');
  const dec = { vocabSize: 9, embedding: 3, hidden: 4, attention: true };
  const models: [string, Map<string, { size: number }>, string[]][] = [
    ['ConvLM', new ConvLM(f, convLMConfig('conv', 7, { embedding: 3, hidden: 4, layers: 3 })).params, ['encoder.weight', 'conv.0.weight', 'conv.0.bias', 'conv.2.weight', 'conv.4.weight', 'decoder.weight', 'decoder.bias']],
    ['SeqClassifier', new SeqClassifier(f, { encoder: 'conv', cell: 'lstm', vocabSize: 5, embedding: 3, hidden: 4, classes: 2, kernel: 3, layers: 2 }).params, ['embedding.weight', 'conv.0.weight', 'conv.2.weight', 'fc.weight']],
    ['BagClassifier', new BagClassifier(f, { features: 'ngrams', ngrams: ngramConfig({ buckets: 16 }), mode: 'mean', embedding: 3, hidden: 4, classes: 2 }).params, ['embedding.weight', 'mlp.0.weight', 'mlp.0.bias', 'mlp.2.weight', 'mlp.2.bias']],
    ['Speller', new Speller(f, { ngrams: ngramConfig({ buckets: 16 }), embedding: 3, decoder: { ...dec, attention: false } }).params, ['embedding.weight', 'init.weight', 'decoder.embedding.weight', 'decoder.rnn.weight_ih_l0', 'decoder.out.weight', 'decoder.out.bias']],
    ['Seq2Seq', new Seq2Seq(f, { srcVocab: 8, embedding: 3, hidden: 4, decoder: dec }).params, ['encoder_embedding.weight', 'encoder.weight_hh_l0', 'decoder.embedding.weight', 'decoder.attn_combine_context.weight', 'decoder.attn_combine_hidden.weight', 'decoder.out.weight']],
    ['Seq2Seq additive', new Seq2Seq(f, { srcVocab: 8, embedding: 3, hidden: 4, decoder: { ...dec, score: 'additive' } }).params, ['decoder.attention.query.weight', 'decoder.attention.key.weight', 'decoder.attention.v.weight', 'decoder.out.weight']],
  ];
  for (const [what, params, names] of models) {
    for (const n of names) assert.ok(params.has(n), `${what}: no parameter '${n}' in [${[...params.keys()]}]`);
    assert.equal(new Set(params.values()).size, params.size, `${what}: a parameter listed twice`);
  }
});

// ---- the LM baselines ----

const f64 = new JsBackend('float64');

for (const kind of ['window', 'conv'] as const) {
  test(`${kind} LM: float64 gradient check through embedding, causal conv, decoder, cross-entropy`, () => {
    const V = 7, T = 5, B = 2;
    const m = new ConvLM(f64, convLMConfig(kind, V, { embedding: 3, hidden: 4, kernel: 3, layers: 2 }), 3);
    const rng = new Rng(2);
    for (const p of m.parameters()) p.uniform(rng, -0.7, 0.7);
    const ids = Int32Array.from({ length: T * B }, () => rng.int(V)), tg = Int32Array.from({ length: T * B }, () => rng.int(V));
    m.resetState(B);
    for (let i = 0; i < m.h.length; i++) m.h[i] = i % 3 === 0 ? -1 : rng.int(V); // some context, some start-of-text
    const h0 = Float64Array.from(m.h);
    const loss = (): number => { m.h.set(h0); m.forward(ids, T, B, false); return m.loss(tg) * T * B; };
    m.h.set(h0);
    for (const p of m.parameters()) p.zeroGrad();
    m.forward(ids, T, B, true);
    m.backward(tg);
    for (const [name, p] of m.params) {
      const g = Float64Array.from(p.grad);
      for (let k = 0; k < 8; k++) {
        const i = rng.int(p.size), old = p.data[i], eps = 1e-5;
        p.data[i] = old + eps; const lp = loss(); p.data[i] = old - eps; const lm = loss(); p.data[i] = old;
        const num = (lp - lm) / (2 * eps) / (T * B);
        assert.ok(Math.abs(num - g[i]) <= 1e-6 * Math.max(1e-3, Math.abs(num) + Math.abs(g[i])) + 1e-10, `${name}[${i}]: ${g[i]} vs ${num}`);
      }
    }
  });

  test(`${kind} LM: a stream cut in batches predicts as the whole stream (context carried)`, () => {
    const V = 9, B = 2, N = 24;
    const m = new ConvLM(f64, convLMConfig(kind, V, { embedding: 4, hidden: 5, kernel: 3, layers: 3 }), 4);
    const rng = new Rng(6), ids = Int32Array.from({ length: N * B }, () => rng.int(V));
    m.resetState(B);
    const whole = Float64Array.from(m.forward(ids, N, B, false).subarray(0, N * B * V));
    m.resetState(B);
    const parts: number[] = [];
    for (const [s, e] of [[0, 5], [5, 6], [6, 17], [17, 24]]) parts.push(...m.forward(ids.subarray(s * B, e * B), e - s, B, false).subarray(0, (e - s) * B * V));
    whole.forEach((v, i) => assert.ok(Math.abs(v - parts[i]) < 1e-12, `logit ${i}: ${v} vs ${parts[i]}`));
  });
}

// ---- the command line ----

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const rnnkit = (...args: string[]): { code: number; out: string; err: string } => {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
};

test('rnnkit task --list; task one-to-one train --json --out, eval, predict; clear errors', () => {
  const l = rnnkit('task', '--list');
  assert.equal(l.code, 0, l.err);
  for (const n of ['one-to-one', 'one-to-many', 'many-to-one', 'many-to-many', 'synced']) assert.match(l.out, new RegExp(`^${n} `, 'm'));
  const ck = join(dir, 'bag.safetensors');
  const t = rnnkit('task', 'one-to-one', 'train', '--steps', '100', '--json', '--out', ck, '--threads', '1');
  assert.equal(t.code, 0, t.err);
  const r = JSON.parse(t.out);
  assert.equal(r.task, 'one-to-one');
  assert.equal(r.metric, 'accuracy');
  assert.ok(r.value > 0.8, `accuracy ${r.value}`);
  const e = rnnkit('task', 'one-to-one', 'eval', '--checkpoint', ck, '--json', '--threads', '1');
  assert.equal(e.code, 0, e.err);
  assert.ok(Math.abs(JSON.parse(e.out).value - r.value) < 1e-9);
  const p = rnnkit('task', 'one-to-one', 'predict', '--checkpoint', ck, '--threads', '1', 'Der Hund schläft im Garten.', 'The dog sleeps in the garden.');
  assert.equal(p.code, 0, p.err);
  assert.deepEqual(p.out.trim().split('\n'), ['de', 'en']);
  const bad = rnnkit('task', 'one-to-two');
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /unknown task 'one-to-two'/);
  const noCk = rnnkit('task', 'synced', 'eval');
  assert.notEqual(noCk.code, 0);
  assert.match(noCk.err, /--checkpoint/);
  const wrong = rnnkit('task', 'synced', 'eval', '--checkpoint', ck);
  assert.match(wrong.err, /model of task 'one-to-one', not 'synced'/);
});

test('rnnkit train --model window|conv trains the baseline LMs through the same Trainer', () => {
  const data = join(dir, 'lm.txt');
  writeFileSync(data, 'The quick brown fox jumps over the lazy dog. Anarchism is a political philosophy. '.repeat(40));
  for (const model of ['window', 'conv']) {
    const r = rnnkit('train', '--model', model, '--data', data, '--steps', '30', '--minutes', '0', '--batch', '4', '--bptt', '32', '--hidden', '32', '--json', '--no-samples', '--threads', '1', '--out', join(dir, `${model}.safetensors`));
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split('\n').map((l) => JSON.parse(l));
    const done = lines.find((l) => l.event === 'done');
    assert.ok(done && done.steps === 30, r.out);
    assert.ok(done.best_valid_bpc < 6, `${model}: validation ${done.best_valid_bpc} bpc after 30 steps (uniform over bytes: 8)`);
  }
});
