// Many-to-one: a sequence classifier over characters, with three encoders compared in docs/tasks.md:
//   rnn    : Embedding -> LSTM/GRU -> the output at each sequence's last real step -> Linear
//   window : Embedding -> one Conv1d (kernel k, 'same' padding) + ReLU = a fixed-window MLP at every step
//            -> mean over the real steps -> Linear
//   conv   : Embedding -> dilated Conv1d stack (dilations 1, 2, 4, ...) + ReLU -> mean over real steps -> Linear
// Variable lengths: a batch is padded at the end ([T, B], lens[b]); padded positions get a zero input vector
// and no gradient, pooling counts the real steps only, and the RNN reads step lens[b]-1 (steps after it
// cannot influence it), so padding changes nothing.

import { immediateOnly } from '../backend/sync.js';
import type { Backend, Buf } from '../backend/backend.js';
import { Embedding } from '../layers/embedding.js';
import { Linear } from '../layers/linear.js';
import { Param } from '../layers/param.js';
import { nestedParameters } from '../layers/nested.js';
import { RecurrentStack } from '../layers/recurrent.js';
import { ConvStack } from '../models/convstack.js';
import { Rng } from '../util/rng.js';
import type { Padded } from './common.js';

export type EncoderKind = 'rnn' | 'window' | 'conv';

export interface SeqClassifierConfig {
  encoder: EncoderKind;
  cell: 'lstm' | 'gru';
  vocabSize: number;
  embedding: number;
  hidden: number;
  classes: number;
  /** Kernel size of the window / conv encoders. */
  kernel: number;
  /** Conv layers (dilations 1, 2, 4, ...). */
  layers: number;
}

export class SeqClassifier {
  readonly embed: Embedding;
  readonly rnn: RecurrentStack | null = null;
  readonly conv: ConvStack | null = null;
  readonly fc: Linear;
  readonly params: Map<string, Param>;
  private cap = 0;
  private emb!: Buf;
  private feats!: Buf;
  private dfeats!: Buf;
  private dseq!: Buf;
  private logits!: Buf;
  private dlogits!: Buf;
  private ids = new Int32Array(0);
  private batch: Padded | null = null;

  constructor(readonly be: Backend, readonly config: SeqClassifierConfig, seed = 1) {
    immediateOnly(be, 'the sequence classifier');
    const rng = new Rng(seed), { encoder, vocabSize: V, embedding: E, hidden: H, classes: C } = config;
    this.embed = new Embedding(be, V, E, rng);
    const children: Record<string, { parameters(): Param[] }> = { embedding: this.embed };
    if (encoder === 'rnn') {
      this.rnn = new RecurrentStack(be, config.cell === 'gru' ? 'GRU' : 'LSTM', { inputSize: E, hiddenSize: H, seed: rng.nextU32() });
      children.rnn = this.rnn;
    } else if (encoder === 'window' || encoder === 'conv') {
      const dilations = encoder === 'window' ? [1] : Array.from({ length: config.layers }, (_, k) => 2 ** k);
      this.conv = new ConvStack(be, { inputSize: E, channels: H, kernelSize: config.kernel, dilations, padding: 'same' }, rng);
      children.conv = this.conv;
    } else throw new Error(`unknown encoder '${encoder}' (expected rnn, window or conv)`);
    this.fc = new Linear(be, H, C, rng);
    children.fc = this.fc;
    this.params = nestedParameters(children);
  }

  parameters(): Param[] {
    return [...this.params.values()];
  }

  private ensure(T: number, B: number): void {
    const { embedding: E, hidden: H, classes: C } = this.config, n = T * B;
    if (n > this.cap) {
      for (const b of [this.emb, this.dseq]) if (b) this.be.free(b);
      this.emb = this.be.alloc(n * E); this.dseq = this.be.alloc(n * H);
      this.ids = new Int32Array(n);
      this.cap = n;
    }
    if (!this.feats || this.feats.length < B * H) {
      for (const b of [this.feats, this.dfeats, this.logits, this.dlogits]) if (b) this.be.free(b);
      this.feats = this.be.alloc(B * H); this.dfeats = this.be.alloc(B * H);
      this.logits = this.be.alloc(B * C); this.dlogits = this.be.alloc(B * C);
    }
  }

  /** Logits [B, classes] for a padded batch (owned by the model). */
  forward(batch: Padded, train: boolean): Buf {
    const { T, B, lens } = batch, { embedding: E, hidden: H } = this.config, be = this.be;
    this.ensure(T, B);
    this.batch = batch;
    for (let i = 0; i < T * B; i++) this.ids[i] = batch.ids[i] < 0 ? 0 : batch.ids[i];
    this.embed.forward(T * B, this.ids, this.emb, 0);
    for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) if (t >= lens[b]) be.fill(E, 0, this.emb, (t * B + b) * E);
    be.fill(B * H, 0, this.feats, 0);
    if (this.rnn) {
      const r = this.rnn.forward(this.emb, 0, T, B, null, null, train);
      for (let b = 0; b < B; b++) be.copy(H, r.out, r.outOff + ((lens[b] - 1) * B + b) * H, this.feats, b * H);
    } else {
      const out = this.conv!.forward(this.emb, 0, T, B, lens);
      for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) if (t < lens[b]) be.addTo(H, out, (t * B + b) * H, this.feats, b * H);
      for (let b = 0; b < B; b++) be.scale(H, 1 / lens[b], this.feats, b * H);
    }
    this.fc.forward(B, this.feats, 0, this.logits, 0);
    return this.logits;
  }

  /** Mean cross-entropy against labels [B] and its gradient into every parameter (accumulated). */
  backward(labels: Int32Array): number {
    const batch = this.batch!, { T, B, lens } = batch, { embedding: E, hidden: H, classes: C } = this.config, be = this.be;
    const loss = be.softmaxCrossEntropy(B, C, this.logits, 0, labels, this.dlogits, 0, 1 / B) / B;
    const df = this.fc.backward(B, this.feats, 0, this.dlogits, 0, true)!;
    be.fill(T * B * H, 0, this.dseq, 0);
    let dx: Buf;
    if (this.rnn) {
      for (let b = 0; b < B; b++) be.copy(H, df, b * H, this.dseq, ((lens[b] - 1) * B + b) * H);
      dx = this.rnn.backward(this.dseq, 0, null, null, true).dx!;
    } else {
      for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) if (t < lens[b]) {
        be.copy(H, df, b * H, this.dseq, (t * B + b) * H);
        be.scale(H, 1 / lens[b], this.dseq, (t * B + b) * H);
      }
      dx = this.conv!.backward(this.dseq, 0, true)!;
    }
    for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) if (t >= lens[b]) be.fill(E, 0, dx, (t * B + b) * E);
    this.embed.backward(T * B, this.ids, dx, 0);
    return loss;
  }

  /** Loss (mean cross-entropy) of the last forward, no gradient. */
  loss(labels: Int32Array): number {
    const B = this.batch!.B;
    return this.be.softmaxCrossEntropy(B, this.config.classes, this.logits, 0, labels, null, 0, 0) / B;
  }
}
