// many-to-one: language identification of Wikipedia sentences from their characters
// (English, German, Russian by default), with an RNN, a fixed-window MLP or a dilated convolution encoder.
// Metric: accuracy on the held-out sentences, with the confusion matrix.

import type { Backend } from '../backend/backend.js';
import type { CharVocab } from '../data/vocab.js';
import { Rng } from '../util/rng.js';
import {
  TaskOptimizer, accuracy, argmaxRows, charVocab, charVocabFromJSON, confusionMatrix, formatConfusion, loadSentences,
  loadTaskModel, padBatch, runBudget, spread, saveTaskModel, shuffle, splitTrainTest, type Sentence,
} from './common.js';
import { SeqClassifier, type EncoderKind, type SeqClassifierConfig } from './seqclassifier.js';
import type { TaskDef, TaskEvalOptions, TaskResult, TaskTrainOptions } from './task.js';

export const MAX_CHARS = 96;

interface Prepared {
  vocab: CharVocab;
  labels: string[];
}

function encode(p: Prepared, s: Sentence): { ids: Int32Array; label: number } {
  return { ids: p.vocab.encode(Array.from(s.text).slice(0, MAX_CHARS).join('')), label: p.labels.indexOf(s.lang) };
}

/** Accuracy and confusion matrix of a classifier over encoded examples, in batches. */
export function evaluateClassifier(model: SeqClassifier, examples: { ids: Int32Array; label: number }[], labels: string[], batch = 64): TaskResult & { confusion: number[][] } {
  const gold: number[] = [], pred: number[] = [];
  for (let i = 0; i < examples.length; i += batch) {
    const chunk = examples.slice(i, i + batch);
    const logits = model.forward(padBatch(chunk.map((e) => e.ids), 0), false);
    pred.push(...argmaxRows(chunk.length, labels.length, logits));
    gold.push(...chunk.map((e) => e.label));
  }
  const counts = labels.map((_, c) => gold.filter((g) => g === c).length);
  const confusion = confusionMatrix(gold, pred, labels.length);
  return {
    task: 'many-to-one', metric: 'accuracy', value: accuracy(gold, pred), baseline: Math.max(...counts) / Math.max(1, gold.length),
    examples: gold.length, labels, confusion, confusionText: formatConfusion(confusion, labels),
  };
}

export function trainLangId(be: Backend, o: TaskTrainOptions): TaskResult {
  const all = loadSentences(o.data);
  let { train, test } = splitTrainTest(all);
  if (o.limit) { train = spread(train, o.limit); test = spread(test, Math.ceil(o.limit / 4)); }
  const labels = [...new Set(all.map((s) => s.lang))].sort();
  const p: Prepared = { vocab: charVocab(train.map((s) => s.text)), labels };
  const trainEx = train.map((s) => encode(p, s)), testEx = test.map((s) => encode(p, s));
  const config: SeqClassifierConfig = {
    encoder: (o.model ?? 'rnn') as EncoderKind, cell: 'lstm', vocabSize: p.vocab.size, embedding: o.embedding ?? 32,
    hidden: o.hidden ?? 64, classes: labels.length, kernel: o.model === 'conv' ? 3 : 5, layers: 3,
  };
  const model = new SeqClassifier(be, config, o.seed);
  const opt = new TaskOptimizer(be, model.parameters(), o.lr ?? 3e-3);
  const rng = new Rng(o.seed), B = Math.min(o.batch ?? 32, trainEx.length);
  let order = shuffle(trainEx, rng), pos = 0, epochs = 0;
  const run = runBudget(o, () => {
    if (pos + B > order.length) { order = shuffle(trainEx, rng); pos = 0; epochs++; }
    const chunk = order.slice(pos, pos + B); pos += B;
    opt.zeroGrad();
    model.forward(padBatch(chunk.map((e) => e.ids), 0), true);
    const loss = model.backward(Int32Array.from(chunk, (e) => e.label));
    opt.step();
    return loss;
  }, (i, loss, sec) => o.log?.(`step ${i}  loss ${loss.toFixed(4)}  ${sec.toFixed(0)} s`));
  if (o.out) saveTaskModel(o.out, 'many-to-one', config, model.params, { vocab: p.vocab.toJSON(), labels });
  const r = evaluateClassifier(model, testEx, labels);
  return { ...r, encoder: config.encoder, steps: run.steps, seconds: run.seconds, epochs, train_loss: run.loss, train_examples: trainEx.length, parameters: model.parameters().reduce((s, q) => s + q.size, 0) };
}

function loadLangId(be: Backend, file: string): { model: SeqClassifier; p: Prepared } {
  const f = loadTaskModel(file, 'many-to-one');
  const model = new SeqClassifier(be, f.config);
  f.restore(model.params);
  return { model, p: { vocab: charVocabFromJSON(f.extra.vocab), labels: f.extra.labels } };
}

export const manyToOne: TaskDef = {
  name: 'many-to-one',
  summary: 'language identification of Wikipedia sentences from their characters (RNN, window MLP or conv)',
  details: 'data: bundled sentences (en, de, ru); model: --model rnn (LSTM, last step) | window | conv; metric: accuracy + confusion matrix',
  train: trainLangId,
  evaluate(be, o: TaskEvalOptions) {
    const { model, p } = loadLangId(be, o.checkpoint);
    let { test } = splitTrainTest(loadSentences(o.data));
    if (o.limit) test = spread(test, o.limit);
    return evaluateClassifier(model, test.filter((s) => p.labels.includes(s.lang)).map((s) => encode(p, s)), p.labels);
  },
  predict(be, checkpoint, inputs) {
    const { model, p } = loadLangId(be, checkpoint);
    const ex = inputs.map((t) => encode(p, { lang: p.labels[0], text: t }));
    const logits = model.forward(padBatch(ex.map((e) => e.ids), 0), false);
    return argmaxRows(ex.length, p.labels.length, logits).map((c) => p.labels[c]);
  },
};
