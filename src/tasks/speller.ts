// one-to-many: a sequence generated from one vector — a word spelled out from its bag of hashed character
// n-grams. The bag's vector (EmbeddingBag, 1/sqrt(n) scaling) goes through tanh(Linear) into the initial
// hidden state of an LSTM decoder, which then writes the word one character at a time.
// The whole-word token is left out of the bag (word: false), so that unseen words are spelled from their
// n-grams alone. Data: the words of the bundled sentences (en, de, ru), split by word.
// Metric: character error rate of the greedy spelling of held-out words (reference: always answering the most
// frequent training word), and exact-match accuracy.

import { immediateOnly } from '../backend/sync.js';
import type { Backend, Buf } from '../backend/backend.js';
import { CharVocab } from '../data/vocab.js';
import { EmbeddingBag, type BagMode } from '../layers/embeddingbag.js';
import { Linear } from '../layers/linear.js';
import { Param } from '../layers/param.js';
import { nestedParameters } from '../layers/nested.js';
import { ngramConfig, tokenizeWords, wordNgramIds, type NgramConfig } from '../text/ngrams.js';
import { Rng } from '../util/rng.js';
import {
  TaskOptimizer, charErrorRate, charVocabFromJSON, loadSentences, loadTaskModel, runBudget, spread, saveTaskModel, shuffle,
  splitTrainTest,
} from './common.js';
import { CharDecoder, type DecoderConfig } from './decoder.js';
import type { TaskDef, TaskResult, TaskTrainOptions } from './task.js';

export interface SpellerConfig {
  ngrams: NgramConfig;
  /** How the n-gram vectors of a word are combined (default 'sqrt': sum / sqrt(n)). */
  mode?: BagMode;
  embedding: number;
  decoder: DecoderConfig;
}

export const MAX_WORD = 16;

export class Speller {
  readonly bag: EmbeddingBag;
  readonly init: Linear;
  readonly dec: CharDecoder;
  readonly params: Map<string, Param>;
  private feats: Buf;
  private h0: Buf;
  private dpre: Buf;
  private B = 0;

  constructor(readonly be: Backend, readonly config: SpellerConfig, seed = 1) {
    immediateOnly(be, 'the one-to-many speller');
    const rng = new Rng(seed);
    this.bag = new EmbeddingBag(be, config.ngrams.buckets, config.embedding, config.mode ?? 'sqrt', rng);
    for (let i = 0; i < this.bag.weight.size; i++) this.bag.weight.data[i] *= 0.1;
    this.init = new Linear(be, config.embedding, config.decoder.hidden, rng);
    this.dec = new CharDecoder(be, config.decoder, rng);
    this.params = nestedParameters({ embedding: this.bag, init: this.init, decoder: this.dec });
    this.feats = be.alloc(0); this.h0 = be.alloc(0); this.dpre = be.alloc(0);
  }

  parameters(): Param[] { return [...this.params.values()]; }

  /** The initial decoder state of each word: tanh(W bag(word) + b) [B, H]. */
  encode(words: string[]): Buf {
    const B = words.length, E = this.config.embedding, H = this.config.decoder.hidden;
    if (this.feats.length < B * E || this.h0.length < B * H) {
      for (const b of [this.feats, this.h0, this.dpre]) this.be.free(b);
      this.feats = this.be.alloc(B * E); this.h0 = this.be.alloc(B * H); this.dpre = this.be.alloc(B * H);
    }
    this.B = B;
    const ids: number[] = [], offsets: number[] = [];
    for (const w of words) { offsets.push(ids.length); ids.push(...wordNgramIds(w, this.config.ngrams)); }
    this.bag.forward(Int32Array.from(ids), Int32Array.from(offsets), this.feats, 0);
    this.init.forward(B, this.feats, 0, this.h0, 0);
    this.be.rnnCellForward('tanh', B, H, this.h0, 0);
    return this.h0;
  }

  /** Teacher-forced loss of spelling the words (inputs/targets [T, B]) and its gradients. */
  trainStep(words: string[], inputs: Int32Array, targets: Int32Array, T: number): number {
    const B = words.length, H = this.config.decoder.hidden;
    const h0 = this.encode(words);
    this.dec.forward(inputs, T, B, h0, null, null, true);
    const g = this.dec.backward(targets);
    this.be.rnnCellBackward('tanh', B, H, this.h0, 0, g.dh0, 0, this.dpre, 0);
    const dfeats = this.init.backward(B, this.feats, 0, this.dpre, 0, true)!;
    this.bag.backward(dfeats, 0);
    return g.loss;
  }

  get batch(): number { return this.B; }
}

/** Decoder vocabulary: the characters of the words, <unk> = 0, and one extra id = end of word (also the start). */
function teacherBatch(vocab: CharVocab, words: string[]): { inputs: Int32Array; targets: Int32Array; T: number } {
  const EOS = vocab.size, B = words.length;
  const seqs = words.map((w) => vocab.encode(w));
  const T = Math.max(...seqs.map((s) => s.length)) + 1;
  const inputs = new Int32Array(T * B).fill(EOS), targets = new Int32Array(T * B).fill(-1);
  seqs.forEach((s, b) => {
    for (let t = 0; t <= s.length; t++) {
      inputs[t * B + b] = t === 0 ? EOS : s[t - 1];
      targets[t * B + b] = t < s.length ? s[t] : EOS;
    }
  });
  return { inputs, targets, T };
}

function spell(model: Speller, vocab: CharVocab, words: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < words.length; i += 128) {
    const chunk = words.slice(i, i + 128);
    const h0 = model.encode(chunk);
    const ids = model.dec.greedy(chunk.length, h0, null, null, vocab.size, vocab.size, MAX_WORD + 2);
    out.push(...ids.map((s) => vocab.decode(s)));
  }
  return out;
}

/** Unique lower-cased words of 2..MAX_WORD letters, in order of first appearance. */
export function corpusWords(texts: string[]): string[] {
  const seen = new Set<string>();
  for (const t of texts) for (const w of tokenizeWords(t)) if (w.length >= 2 && w.length <= MAX_WORD && /^\p{L}+$/u.test(w)) seen.add(w);
  return [...seen];
}

function evaluate(model: Speller, vocab: CharVocab, words: string[], reference: string): TaskResult {
  const hyp = spell(model, vocab, words);
  const exact = hyp.filter((h, i) => h === words[i]).length / Math.max(1, words.length);
  return {
    task: 'one-to-many', metric: 'cer', value: charErrorRate(words, hyp), baseline: charErrorRate(words, words.map(() => reference)),
    exact_match: exact, test_words: words.length, samples: words.slice(0, 8).map((w, i) => ({ word: w, spelled: hyp[i] })),
  };
}

export function trainSpeller(be: Backend, o: TaskTrainOptions): TaskResult {
  const sentences = loadSentences(o.data);
  let { train, test } = splitTrainTest(corpusWords(sentences.map((s) => s.text)));
  if (o.limit) { train = spread(train, o.limit); test = spread(test, Math.ceil(o.limit / 4)); }
  const vocab = CharVocab.fromText(train.join(' '));
  const H = o.hidden ?? 128;
  const config: SpellerConfig = {
    ngrams: ngramConfig({ buckets: 1 << 16, word: false, minn: 2, maxn: 4 }), mode: (o.model ?? 'sqrt') as BagMode, embedding: o.embedding ?? 64,
    decoder: { vocabSize: vocab.size + 1, embedding: 32, hidden: H, attention: false },
  };
  const model = new Speller(be, config, o.seed);
  const opt = new TaskOptimizer(be, model.parameters(), o.lr ?? 3e-3, 5, [model.bag]);
  const rng = new Rng(o.seed), B = Math.min(o.batch ?? 32, train.length);
  let order = shuffle(train, rng), pos = 0, epochs = 0;
  const run = runBudget(o, () => {
    if (pos + B > order.length) { order = shuffle(train, rng); pos = 0; epochs++; }
    const words = order.slice(pos, pos + B); pos += B;
    const { inputs, targets, T } = teacherBatch(vocab, words);
    opt.zeroGrad();
    const loss = model.trainStep(words, inputs, targets, T);
    opt.step();
    return loss;
  }, (i, loss, sec) => o.log?.(`step ${i}  loss ${loss.toFixed(4)}  ${sec.toFixed(0)} s`));
  const reference = mostFrequentWord(sentences.map((s) => s.text), new Set(train));
  if (o.out) saveTaskModel(o.out, 'one-to-many', config, model.params, { vocab: vocab.toJSON(), reference });
  return { ...evaluate(model, vocab, test, reference), mode: config.mode, steps: run.steps, seconds: run.seconds, epochs, train_loss: run.loss, train_words: train.length };
}

function mostFrequentWord(texts: string[], among: Set<string>): string {
  const counts = new Map<string, number>();
  for (const t of texts) for (const w of tokenizeWords(t)) if (among.has(w)) counts.set(w, (counts.get(w) ?? 0) + 1);
  let best = '', n = -1;
  for (const [w, k] of counts) if (k > n) { best = w; n = k; }
  return best;
}

function load(be: Backend, file: string): { model: Speller; vocab: CharVocab; reference: string } {
  const f = loadTaskModel(file, 'one-to-many');
  const model = new Speller(be, f.config);
  f.restore(model.params);
  return { model, vocab: charVocabFromJSON(f.extra.vocab), reference: f.extra.reference };
}

export const oneToMany: TaskDef = {
  name: 'one-to-many',
  summary: 'spell a word from its vector of hashed character n-grams (the vector is the LSTM\'s initial state)',
  details: 'data: words of the bundled sentences (en, de, ru), held-out words for testing; model: EmbeddingBag(--model sqrt | mean | sum) -> tanh(Linear) = h0 -> LSTM decoder, greedy; metric: CER (and exact match)',
  train: trainSpeller,
  evaluate(be, o) {
    const { model, vocab, reference } = load(be, o.checkpoint);
    let { test } = splitTrainTest(corpusWords(loadSentences(o.data).map((s) => s.text)));
    if (o.limit) test = spread(test, o.limit);
    return evaluate(model, vocab, test, reference);
  },
  predict(be, checkpoint, inputs) {
    const { model, vocab } = load(be, checkpoint);
    return spell(model, vocab, inputs.map((w) => w.trim().toLowerCase()));
  },
};
