// synced many-to-many: one label per input step, with a bidirectional LSTM — restoring capital letters in
// lower-cased Wikipedia text (English, German — where every noun is capitalised — and Russian).
// Input: the lower-cased characters; label per step: 1 = the original letter was upper case, 0 = lower case,
// -1 (ignored by the loss and the metric) for characters without case. Metric: per-step F1 of the
// "upper case" class on the held-out text; reference: the rule "capitalise the first letter of a sentence".

import { immediateOnly } from '../backend/sync.js';
import type { Backend, Buf } from '../backend/backend.js';
import type { CharVocab } from '../data/vocab.js';
import { Embedding } from '../layers/embedding.js';
import { Linear } from '../layers/linear.js';
import { Param } from '../layers/param.js';
import { nestedParameters } from '../layers/nested.js';
import { RecurrentStack } from '../layers/recurrent.js';
import { Rng } from '../util/rng.js';
import {
  TaskOptimizer, charVocab, charVocabFromJSON, f1Score, loadSentences, loadTaskModel, runBudget, spread, saveTaskModel,
  splitTrainTest,
} from './common.js';
import type { TaskDef, TaskResult, TaskTrainOptions } from './task.js';

export interface TaggerConfig {
  vocabSize: number;
  embedding: number;
  hidden: number;
  layers: number;
  classes: number;
}

/** Embedding -> bidirectional LSTM -> Linear(2H, classes) at every step. */
export class BiTagger {
  readonly embed: Embedding;
  readonly rnn: RecurrentStack;
  readonly fc: Linear;
  readonly params: Map<string, Param>;
  private cap = 0;
  private emb!: Buf;
  private logits!: Buf;
  private dlogits!: Buf;
  private ids = new Int32Array(0);
  private out: Buf | null = null;
  private outOff = 0;
  private n = 0;

  constructor(readonly be: Backend, readonly config: TaggerConfig, seed = 1) {
    immediateOnly(be, 'the synced tagger');
    const rng = new Rng(seed);
    this.embed = new Embedding(be, config.vocabSize, config.embedding, rng);
    this.rnn = new RecurrentStack(be, 'LSTM', { inputSize: config.embedding, hiddenSize: config.hidden, numLayers: config.layers, bidirectional: true, seed: rng.nextU32() });
    this.fc = new Linear(be, 2 * config.hidden, config.classes, rng);
    this.params = nestedParameters({ embedding: this.embed, rnn: this.rnn, fc: this.fc });
  }

  parameters(): Param[] { return [...this.params.values()]; }

  /** ids [T, B] -> logits [T*B, classes] (owned by the model). */
  forward(ids: Int32Array, T: number, B: number, train: boolean): Buf {
    const n = T * B, { embedding: E, classes: C } = this.config;
    if (n > this.cap) {
      for (const b of [this.emb, this.logits, this.dlogits]) if (b) this.be.free(b);
      this.emb = this.be.alloc(n * E); this.logits = this.be.alloc(n * C); this.dlogits = this.be.alloc(n * C);
      this.ids = new Int32Array(n); this.cap = n;
    }
    this.n = n;
    this.ids.set(ids.subarray(0, n));
    this.embed.forward(n, this.ids, this.emb, 0);
    const r = this.rnn.forward(this.emb, 0, T, B, null, null, train);
    this.out = r.out; this.outOff = r.outOff;
    this.fc.forward(n, r.out, r.outOff, this.logits, 0);
    return this.logits;
  }

  /** Mean cross-entropy over the labelled steps (labels < 0 ignored) and the gradients. */
  backward(labels: Int32Array): number {
    const { n } = this, C = this.config.classes;
    let m = 0;
    for (let i = 0; i < n; i++) if (labels[i] >= 0) m++;
    const loss = this.be.softmaxCrossEntropy(n, C, this.logits, 0, labels, this.dlogits, 0, 1 / Math.max(1, m)) / Math.max(1, m);
    const dOut = this.fc.backward(n, this.out!, this.outOff, this.dlogits, 0, true)!;
    const g = this.rnn.backward(dOut, 0, null, null, true);
    this.embed.backward(n, this.ids, g.dx!, 0);
    return loss;
  }
}

/** Lower-cased code points and the case labels (1 upper, 0 lower, -1 no case). */
export function caseLabels(text: string): { lower: string; labels: Int32Array } {
  const chars = Array.from(text), lower: string[] = [], labels = new Int32Array(chars.length);
  chars.forEach((ch, i) => {
    const lo = ch.toLowerCase(), up = ch.toUpperCase();
    if (Array.from(lo).length !== 1 || lo === up) { lower.push(Array.from(lo).length === 1 ? lo : ch); labels[i] = -1; return; }
    lower.push(lo);
    labels[i] = ch === lo ? 0 : 1;
  });
  return { lower: lower.join(''), labels };
}

/** The reference rule: upper case for the first cased letter of the text and after . ! ? */
export function ruleCase(lower: string): Int32Array {
  const chars = Array.from(lower), out = new Int32Array(chars.length);
  let start = true;
  chars.forEach((ch, i) => {
    if (ch.toLowerCase() !== ch.toUpperCase()) { out[i] = start ? 1 : 0; start = false; }
    if ('.!?'.includes(ch)) start = true;
  });
  return out;
}

function f1Of(gold: Int32Array, pred: ArrayLike<number>): { precision: number; recall: number; f1: number; accuracy: number } {
  let tp = 0, fp = 0, fn = 0, ok = 0, n = 0;
  for (let i = 0; i < gold.length; i++) {
    if (gold[i] < 0) continue;
    n++;
    if (gold[i] === pred[i]) ok++;
    if (pred[i] === 1 && gold[i] === 1) tp++; else if (pred[i] === 1) fp++; else if (gold[i] === 1) fn++;
  }
  return { ...f1Score(tp, fp, fn), accuracy: n ? ok / n : 0 };
}

/** Tag a long text in columns of T steps (B at a time): returns the predicted label per code point. */
function tagText(model: BiTagger, vocab: CharVocab, lower: string, T = 128, B = 16): Int32Array {
  const ids = vocab.encode(lower), N = ids.length, pred = new Int32Array(N), space = vocab.encode(' ')[0];
  const chunks = Math.ceil(N / T);
  for (let c0 = 0; c0 < chunks; c0 += B) {
    const nb = Math.min(B, chunks - c0), batch = new Int32Array(T * nb);
    // the text's last chunk is padded with spaces (its padded steps are dropped)
    for (let b = 0; b < nb; b++) for (let t = 0; t < T; t++) { const i = (c0 + b) * T + t; batch[t * nb + b] = i < N ? ids[i] : space; }
    const logits = model.forward(batch, T, nb, false);
    for (let b = 0; b < nb; b++) for (let t = 0; t < T; t++) {
      const i = (c0 + b) * T + t;
      if (i < N) pred[i] = logits[(t * nb + b) * 2 + 1] > logits[(t * nb + b) * 2] ? 1 : 0;
    }
  }
  return pred;
}

function evaluate(model: BiTagger, vocab: CharVocab, testText: string): TaskResult {
  const { lower, labels } = caseLabels(testText);
  const m = f1Of(labels, tagText(model, vocab, lower));
  const rule = f1Of(labels, ruleCase(lower));
  let cased = 0;
  for (const l of labels) if (l >= 0) cased++;
  return { task: 'synced', metric: 'f1_upper', value: m.f1, baseline: rule.f1, precision: m.precision, recall: m.recall, step_accuracy: m.accuracy, rule_accuracy: rule.accuracy, labelled_steps: cased };
}

const joinText = (xs: { text: string }[]): string => xs.map((s) => s.text).join(' ');

export function trainSynced(be: Backend, o: TaskTrainOptions): TaskResult {
  let { train, test } = splitTrainTest(loadSentences(o.data));
  if (o.limit) { train = spread(train, o.limit); test = spread(test, Math.ceil(o.limit / 4)); }
  const trainText = joinText(train), { lower, labels } = caseLabels(trainText);
  const vocab = charVocab([lower]);
  const ids = vocab.encode(lower);
  const config: TaggerConfig = { vocabSize: vocab.size, embedding: o.embedding ?? 32, hidden: o.hidden ?? 64, layers: 1, classes: 2 };
  const model = new BiTagger(be, config, o.seed);
  const opt = new TaskOptimizer(be, model.parameters(), o.lr ?? 3e-3);
  const rng = new Rng(o.seed), T = 64, B = o.batch ?? 32;
  if (ids.length <= T) throw new Error(`synced: the training text is too short (${ids.length} characters)`);
  const x = new Int32Array(T * B), y = new Int32Array(T * B);
  const run = runBudget(o, () => {
    for (let b = 0; b < B; b++) {
      const s = rng.int(ids.length - T);
      for (let t = 0; t < T; t++) { x[t * B + b] = ids[s + t]; y[t * B + b] = labels[s + t]; }
    }
    opt.zeroGrad();
    model.forward(x, T, B, true);
    const loss = model.backward(y);
    opt.step();
    return loss;
  }, (i, loss, sec) => o.log?.(`step ${i}  loss ${loss.toFixed(4)}  ${sec.toFixed(0)} s`));
  if (o.out) saveTaskModel(o.out, 'synced', config, model.params, { vocab: vocab.toJSON() });
  return { ...evaluate(model, vocab, joinText(test)), steps: run.steps, seconds: run.seconds, train_loss: run.loss, train_chars: ids.length };
}

function load(be: Backend, file: string): { model: BiTagger; vocab: CharVocab } {
  const f = loadTaskModel(file, 'synced');
  const model = new BiTagger(be, f.config);
  f.restore(model.params);
  return { model, vocab: charVocabFromJSON(f.extra.vocab) };
}

export const synced: TaskDef = {
  name: 'synced',
  summary: 'restore capital letters in lower-cased Wikipedia text: one label per character, bidirectional LSTM',
  details: 'data: bundled sentences (en, de, ru) as running text; model: embedding -> BiLSTM -> linear per step; metric: per-step F1 of "upper case" (reference: capitalise sentence starts)',
  train: trainSynced,
  evaluate(be, o) {
    const { model, vocab } = load(be, o.checkpoint);
    let { test } = splitTrainTest(loadSentences(o.data));
    if (o.limit) test = spread(test, o.limit);
    return evaluate(model, vocab, joinText(test));
  },
  predict(be, checkpoint, inputs) {
    const { model, vocab } = load(be, checkpoint);
    return inputs.map((text) => {
      const { lower } = caseLabels(text);
      const pred = tagText(model, vocab, lower), chars = Array.from(lower);
      return chars.map((c, i) => (pred[i] ? c.toUpperCase() : c)).join('');
    });
  },
};
