// many-to-many (encoder-decoder): correcting noised Wikipedia sentence fragments, character by character.
// Noise: each character is, with probability p, deleted, substituted, duplicated with a random insertion, or
// swapped with the next one. Encoder: Embedding -> LSTM over the noisy text; the decoder (LSTM + dot
// attention over the encoder outputs) starts from the encoder's output at the last real source step, is
// trained with teacher forcing and decodes greedily.
// Metric: character error rate against the clean text, after correction vs before (the noisy input itself).

import { immediateOnly } from '../backend/sync.js';
import type { Backend, Buf } from '../backend/backend.js';
import { CharVocab } from '../data/vocab.js';
import { Embedding } from '../layers/embedding.js';
import { Param } from '../layers/param.js';
import { nestedParameters } from '../layers/nested.js';
import { RecurrentStack } from '../layers/recurrent.js';
import { Rng } from '../util/rng.js';
import {
  TaskOptimizer, charErrorRate, charVocabFromJSON, loadSentences, loadTaskModel, padBatch, runBudget, spread, saveTaskModel,
  shuffle, splitTrainTest,
} from './common.js';
import { CharDecoder, type DecoderConfig } from './decoder.js';
import type { TaskDef, TaskResult, TaskTrainOptions } from './task.js';

export const MAX_FRAGMENT = 48;

export interface Seq2SeqConfig {
  srcVocab: number;
  embedding: number;
  hidden: number;
  decoder: DecoderConfig;
}

export class Seq2Seq {
  readonly embed: Embedding;
  readonly enc: RecurrentStack;
  readonly dec: CharDecoder;
  readonly params: Map<string, Param>;
  private cap = 0;
  private emb!: Buf;
  private denc!: Buf;
  private h0!: Buf;
  private ids = new Int32Array(0);
  private S = 0;
  private B = 0;
  private lens: Int32Array = new Int32Array(0);

  constructor(readonly be: Backend, readonly config: Seq2SeqConfig, seed = 1) {
    immediateOnly(be, 'the encoder-decoder task model');
    const rng = new Rng(seed);
    this.embed = new Embedding(be, config.srcVocab, config.embedding, rng);
    this.enc = new RecurrentStack(be, 'LSTM', { inputSize: config.embedding, hiddenSize: config.hidden, seed: rng.nextU32() });
    this.dec = new CharDecoder(be, config.decoder, rng);
    this.params = nestedParameters({ encoder_embedding: this.embed, encoder: this.enc, decoder: this.dec });
  }

  parameters(): Param[] { return [...this.params.values()]; }

  /** Run the encoder over padded sources [S, B]; returns the decoder's memory and initial state. */
  encode(src: Int32Array, lens: Int32Array, S: number, B: number, train: boolean): { mem: { out: Buf; off: number; S: number; lens: Int32Array }; h0: Buf } {
    const { embedding: E, hidden: H } = this.config, n = S * B;
    if (n > this.cap || !this.h0 || this.h0.length < B * H) {
      for (const b of [this.emb, this.denc, this.h0]) if (b) this.be.free(b);
      this.emb = this.be.alloc(n * E); this.denc = this.be.alloc(n * H); this.h0 = this.be.alloc(B * H);
      this.ids = new Int32Array(n); this.cap = n;
    }
    this.S = S; this.B = B; this.lens = lens;
    this.ids.set(src.subarray(0, n));
    this.embed.forward(n, this.ids, this.emb, 0);
    const r = this.enc.forward(this.emb, 0, S, B, null, null, train);
    for (let b = 0; b < B; b++) this.be.copy(H, r.out, r.outOff + ((lens[b] - 1) * B + b) * H, this.h0, b * H);
    return { mem: { out: r.out, off: r.outOff, S, lens }, h0: this.h0 };
  }

  trainStep(src: Int32Array, lens: Int32Array, S: number, inputs: Int32Array, targets: Int32Array, T: number, B: number): number {
    const H = this.config.hidden;
    const { mem, h0 } = this.encode(src, lens, S, B, true);
    this.dec.forward(inputs, T, B, h0, null, mem, true);
    const g = this.dec.backward(targets);
    this.be.copy(S * B * H, g.dmem!, 0, this.denc, 0);
    for (let b = 0; b < B; b++) this.be.addTo(H, g.dh0, b * H, this.denc, ((this.lens[b] - 1) * B + b) * H);
    const ge = this.enc.backward(this.denc, 0, null, null, true);
    this.embed.backward(S * B, this.ids, ge.dx!, 0);
    return g.loss;
  }
}

/** Noise a text: per character with probability p, delete / substitute / insert / swap with the next. */
export function addNoise(text: string, p: number, alphabet: string[], rng: Rng): string {
  const c = Array.from(text), out: string[] = [];
  for (let i = 0; i < c.length; i++) {
    if (rng.next() >= p) { out.push(c[i]); continue; }
    const kind = rng.int(4);
    if (kind === 0) continue; // delete
    if (kind === 1) out.push(alphabet[rng.int(alphabet.length)]); // substitute
    else if (kind === 2) out.push(c[i], alphabet[rng.int(alphabet.length)]); // insert after
    else if (i + 1 < c.length) { out.push(c[i + 1], c[i]); i++; } // swap
    else out.push(c[i]);
  }
  return out.join('');
}

/** Sentence fragments of at most MAX_FRAGMENT characters, cut at spaces. */
export function fragments(texts: string[]): string[] {
  const out: string[] = [];
  for (const t of texts) {
    let cur = '';
    for (const w of t.split(' ')) {
      if (cur && Array.from(cur + ' ' + w).length > MAX_FRAGMENT) { out.push(cur); cur = ''; }
      if (Array.from(w).length > MAX_FRAGMENT) continue;
      cur = cur ? `${cur} ${w}` : w;
    }
    if (Array.from(cur).length >= 8) out.push(cur);
  }
  return out;
}

function teacher(vocab: CharVocab, clean: string[]): { inputs: Int32Array; targets: Int32Array; T: number } {
  const EOS = vocab.size, B = clean.length, seqs = clean.map((s) => vocab.encode(s));
  const T = Math.max(...seqs.map((s) => s.length)) + 1;
  const inputs = new Int32Array(T * B).fill(EOS), targets = new Int32Array(T * B).fill(-1);
  seqs.forEach((s, b) => { for (let t = 0; t <= s.length; t++) { inputs[t * B + b] = t ? s[t - 1] : EOS; targets[t * B + b] = t < s.length ? s[t] : EOS; } });
  return { inputs, targets, T };
}

/** Correct texts: greedy decoding (beam = 1) or beam search with `beam` hypotheses. */
export function correct(model: Seq2Seq, vocab: CharVocab, noisy: string[], beam = 1): string[] {
  const out: string[] = [];
  for (let i = 0; i < noisy.length; i += 64) {
    const chunk = noisy.slice(i, i + 64), pb = padBatch(chunk.map((s) => vocab.encode(s)), 0);
    const { mem, h0 } = model.encode(pb.ids, pb.lens, pb.T, pb.B, false);
    const ids = beam <= 1 ? model.dec.greedy(pb.B, h0, null, mem, vocab.size, vocab.size, pb.T + 8)
      : Array.from({ length: pb.B }, (_, b) => model.dec.beam(beam, h0, null, b, mem, vocab.size, vocab.size, pb.T + 8));
    out.push(...ids.map((s) => vocab.decode(s)));
  }
  return out;
}

/** The fixed noisy test set: the same noise for every run (seeded by the fragment index). */
function noisyTest(test: string[], p: number, alphabet: string[]): string[] {
  return test.map((s, i) => addNoise(s, p, alphabet, new Rng(1000 + i)));
}

function evaluate(model: Seq2Seq, vocab: CharVocab, clean: string[], noisy: string[], beam = 1): TaskResult {
  const hyp = correct(model, vocab, noisy, beam);
  return {
    task: 'many-to-many', metric: 'cer_after', value: charErrorRate(clean, hyp), baseline: charErrorRate(clean, noisy),
    cer_before: charErrorRate(clean, noisy), decoding: beam > 1 ? `beam ${beam}` : 'greedy', test_fragments: clean.length,
    samples: clean.slice(0, 5).map((c, i) => ({ clean: c, noisy: noisy[i], corrected: hyp[i] })),
  };
}

export const NOISE = 0.08;

export function trainSeq2Seq(be: Backend, o: TaskTrainOptions): TaskResult {
  const all = loadSentences(o.data);
  let { train, test } = splitTrainTest(fragments(all.map((s) => s.text)));
  if (o.limit) { train = spread(train, o.limit); test = spread(test, Math.ceil(o.limit / 8)); }
  const vocab = CharVocab.fromText(train.join('\n'), { minCount: 2 });
  const alphabet = vocab.chars.slice(1).filter((c) => c !== '\n');
  const H = o.hidden ?? 64;
  const config: Seq2SeqConfig = { srcVocab: vocab.size, embedding: o.embedding ?? 32, hidden: H, decoder: { vocabSize: vocab.size + 1, embedding: o.embedding ?? 32, hidden: H, attention: true, score: o.model === 'additive' ? 'additive' : 'dot' } };
  if (o.model && o.model !== 'dot' && o.model !== 'additive') throw new Error(`many-to-many: --model must be dot or additive (the attention score), got '${o.model}'`);
  const model = new Seq2Seq(be, config, o.seed);
  const opt = new TaskOptimizer(be, model.parameters(), o.lr ?? 1e-2);
  const rng = new Rng(o.seed), B = Math.min(o.batch ?? 32, train.length);
  let order = shuffle(train, rng), pos = 0, epochs = 0;
  const run = runBudget(o, () => {
    if (pos + B > order.length) { order = shuffle(train, rng); pos = 0; epochs++; }
    const clean = order.slice(pos, pos + B); pos += B;
    const pb = padBatch(clean.map((s) => vocab.encode(addNoise(s, NOISE, alphabet, rng))), 0);
    const { inputs, targets, T } = teacher(vocab, clean);
    opt.zeroGrad();
    const loss = model.trainStep(pb.ids, pb.lens, pb.T, inputs, targets, T, B);
    opt.step();
    return loss;
  }, (i, loss, sec) => o.log?.(`step ${i}  loss ${loss.toFixed(4)}  ${sec.toFixed(0)} s`));
  if (o.out) saveTaskModel(o.out, 'many-to-many', config, model.params, { vocab: vocab.toJSON() });
  return { ...evaluate(model, vocab, test, noisyTest(test, NOISE, alphabet)), attention: config.decoder.score, noise: NOISE, steps: run.steps, seconds: run.seconds, epochs, train_loss: run.loss, train_fragments: train.length };
}

function load(be: Backend, file: string): { model: Seq2Seq; vocab: CharVocab } {
  const f = loadTaskModel(file, 'many-to-many');
  const model = new Seq2Seq(be, f.config);
  f.restore(model.params);
  return { model, vocab: charVocabFromJSON(f.extra.vocab) };
}

export const manyToMany: TaskDef = {
  name: 'many-to-many',
  summary: 'correct noised Wikipedia sentence fragments: LSTM encoder-decoder with attention, teacher forcing, greedy or beam decoding',
  details: `data: bundled sentences cut into fragments of <= ${MAX_FRAGMENT} chars, noised (p=${NOISE}: delete/substitute/insert/swap); --model dot | additive attention; --beam K; metric: CER after correction vs before`,
  train: trainSeq2Seq,
  evaluate(be, o) {
    const { model, vocab } = load(be, o.checkpoint);
    let { test } = splitTrainTest(fragments(loadSentences(o.data).map((s) => s.text)));
    if (o.limit) test = spread(test, o.limit);
    return evaluate(model, vocab, test, noisyTest(test, NOISE, vocab.chars.slice(1).filter((c) => c !== '\n')), o.beam ?? 1);
  },
  predict(be, checkpoint, inputs, o = {}) {
    const { model, vocab } = load(be, checkpoint);
    return correct(model, vocab, inputs.map((s) => Array.from(s).slice(0, 4 * MAX_FRAGMENT).join('')), o.beam ?? 1);
  },
};
