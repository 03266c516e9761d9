// one-to-one: a plain MLP on fixed features — the language of a sentence from its bag of hashed character
// n-grams (fastText-style): EmbeddingBag(buckets, E, mode) -> MLP [E, hidden, classes] (ReLU).
// No sequence processing at all: one input vector, one output. Metric: accuracy on the held-out sentences.

import { immediateOnly } from '../backend/sync.js';
import type { Backend, Buf } from '../backend/backend.js';
import { EmbeddingBag, type BagMode } from '../layers/embeddingbag.js';
import { MLP } from '../layers/mlp.js';
import { Param } from '../layers/param.js';
import { nestedParameters } from '../layers/nested.js';
import { textBags, type NgramConfig, ngramConfig } from '../text/ngrams.js';
import { WordVocab } from '../text/wordvocab.js';
import { Rng } from '../util/rng.js';
import {
  TaskOptimizer, accuracy, argmaxRows, confusionMatrix, formatConfusion, loadSentences, loadTaskModel, runBudget, spread,
  saveTaskModel, shuffle, splitTrainTest, type Sentence,
} from './common.js';
import type { TaskDef, TaskResult, TaskTrainOptions } from './task.js';

export interface BagClassifierConfig {
  /** Bag items: hashed character n-grams of the words, or word ids (a vocabulary with <unk>). */
  features: 'ngrams' | 'words';
  ngrams: NgramConfig;
  /** Rows of the word table (features 'words'). */
  words?: number;
  mode: BagMode;
  embedding: number;
  hidden: number;
  classes: number;
}

export class BagClassifier {
  readonly bag: EmbeddingBag;
  readonly mlp: MLP;
  readonly params: Map<string, Param>;
  private feats: Buf;
  private dlogits: Buf;
  private logits: Buf | null = null;
  private n = 0;

  constructor(readonly be: Backend, readonly config: BagClassifierConfig, readonly vocab: WordVocab | null = null, seed = 1) {
    immediateOnly(be, 'the n-gram bag classifier');
    const rng = new Rng(seed);
    if (config.features === 'words' && !vocab) throw new Error('BagClassifier: word features need a vocabulary');
    this.bag = new EmbeddingBag(be, config.features === 'words' ? vocab!.size : config.ngrams.buckets, config.embedding, config.mode, rng);
    this.mlp = new MLP(be, [config.embedding, config.hidden, config.classes], 'relu', rng);
    this.params = nestedParameters({ embedding: this.bag, mlp: this.mlp });
    this.feats = be.alloc(0); this.dlogits = be.alloc(0);
  }

  parameters(): Param[] { return [...this.params.values()]; }

  /** Logits [texts, classes]. */
  forward(texts: string[]): Buf {
    const { ids, offsets } = this.vocab ? wordBags(this.vocab, texts) : textBags(texts, this.config.ngrams), n = texts.length, E = this.config.embedding;
    if (this.feats.length < n * E) { this.be.free(this.feats); this.be.free(this.dlogits); this.feats = this.be.alloc(n * E); this.dlogits = this.be.alloc(n * this.config.classes); }
    this.n = n;
    this.bag.forward(ids, offsets, this.feats, 0);
    return (this.logits = this.mlp.forward(n, this.feats, 0));
  }

  backward(labels: Int32Array): number {
    const { n } = this, C = this.config.classes;
    const loss = this.be.softmaxCrossEntropy(n, C, this.logits!, 0, labels, this.dlogits, 0, 1 / n) / n;
    const dx = this.mlp.backward(this.dlogits, 0, true)!;
    this.bag.backward(dx, 0);
    return loss;
  }
}

function wordBags(vocab: WordVocab, texts: string[]): { ids: Int32Array; offsets: Int32Array } {
  const parts = texts.map((t) => vocab.encode(t)), offsets = new Int32Array(texts.length), ids = new Int32Array(parts.reduce((s, p) => s + p.length, 0));
  let k = 0;
  parts.forEach((p, i) => { offsets[i] = k; ids.set(p, k); k += p.length; });
  return { ids, offsets };
}

/** Share of test word tokens outside the vocabulary, per language. */
function oovRates(vocab: WordVocab, test: Sentence[], labels: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of labels) {
    let unk = 0, n = 0;
    for (const s of test) if (s.lang === l) for (const id of vocab.encode(s.text)) { n++; if (id === WordVocab.UNK) unk++; }
    out[l] = n ? unk / n : 0;
  }
  return out;
}

function evaluate(model: BagClassifier, test: Sentence[], labels: string[]): TaskResult {
  const gold: number[] = [], pred: number[] = [];
  for (let i = 0; i < test.length; i += 128) {
    const chunk = test.slice(i, i + 128);
    pred.push(...argmaxRows(chunk.length, labels.length, model.forward(chunk.map((s) => s.text))));
    gold.push(...chunk.map((s) => labels.indexOf(s.lang)));
  }
  const confusion = confusionMatrix(gold, pred, labels.length);
  const counts = labels.map((_, c) => gold.filter((g) => g === c).length);
  return { task: 'one-to-one', metric: 'accuracy', value: accuracy(gold, pred), baseline: Math.max(...counts) / Math.max(1, gold.length), examples: gold.length, labels, confusion, confusionText: formatConfusion(confusion, labels) };
}

export function trainBag(be: Backend, o: TaskTrainOptions): TaskResult {
  const all = loadSentences(o.data);
  let { train, test } = splitTrainTest(all);
  if (o.limit) { train = spread(train, o.limit); test = spread(test, Math.ceil(o.limit / 4)); }
  const labels = [...new Set(all.map((s) => s.lang))].sort();
  // --model: the bag mode (mean | sum | sqrt) of hashed n-grams, or 'words' (mean over word ids)
  const words = o.model === 'words', mode = (words ? 'mean' : o.model ?? 'mean') as BagMode;
  const vocab = words ? WordVocab.fromTexts(train.map((s) => s.text)) : null;
  const config: BagClassifierConfig = { features: words ? 'words' : 'ngrams', ngrams: ngramConfig({ buckets: 1 << 16 }), words: vocab?.size, mode, embedding: o.embedding ?? 32, hidden: o.hidden ?? 64, classes: labels.length };
  const model = new BagClassifier(be, config, vocab, o.seed);
  const opt = new TaskOptimizer(be, model.parameters(), o.lr ?? 1e-2, 5, [model.bag]);
  const rng = new Rng(o.seed), B = Math.min(o.batch ?? 32, train.length);
  let order = shuffle(train, rng), pos = 0, epochs = 0;
  const run = runBudget(o, () => {
    if (pos + B > order.length) { order = shuffle(train, rng); pos = 0; epochs++; }
    const chunk = order.slice(pos, pos + B); pos += B;
    opt.zeroGrad();
    model.forward(chunk.map((s) => s.text));
    const loss = model.backward(Int32Array.from(chunk, (s) => labels.indexOf(s.lang)));
    opt.step();
    return loss;
  }, (i, loss, sec) => o.log?.(`step ${i}  loss ${loss.toFixed(4)}  ${sec.toFixed(0)} s`));
  if (o.out) saveTaskModel(o.out, 'one-to-one', config, model.params, vocab ? { labels, vocab: vocab.toJSON() } : { labels });
  return { ...evaluate(model, test, labels), features: config.features, mode, ...(vocab ? { test_oov_rate: oovRates(vocab, test, labels) } : {}), steps: run.steps, seconds: run.seconds, epochs, train_loss: run.loss, train_examples: train.length };
}

function load(be: Backend, file: string): { model: BagClassifier; labels: string[] } {
  const f = loadTaskModel(file, 'one-to-one');
  const model = new BagClassifier(be, f.config, f.extra.vocab ? WordVocab.fromJSON(f.extra.vocab) : null);
  f.restore(model.params);
  return { model, labels: f.extra.labels };
}

export const oneToOne: TaskDef = {
  name: 'one-to-one',
  summary: 'language of a sentence from its bag of hashed character n-grams, with a plain MLP',
  details: 'data: bundled sentences (en, de, ru); model: EmbeddingBag(2^16 buckets, --model mean | sum | sqrt; or --model words: word ids with <unk>) -> MLP; metric: accuracy',
  train: trainBag,
  evaluate(be, o) {
    const { model, labels } = load(be, o.checkpoint);
    let { test } = splitTrainTest(loadSentences(o.data));
    if (o.limit) test = spread(test, o.limit);
    return evaluate(model, test.filter((s) => labels.includes(s.lang)), labels);
  },
  predict(be, checkpoint, inputs) {
    const { model, labels } = load(be, checkpoint);
    return argmaxRows(inputs.length, labels.length, model.forward(inputs)).map((c) => labels[c]);
  },
};
