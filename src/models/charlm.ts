// A character-level language model: the RNNModel of pytorch/examples' word_language_model, for bytes or
// characters. encoder (Embedding) -> rnn (LSTM | GRU | RNN, stacked) -> dropout -> decoder (Linear) -> softmax.
// Parameter names match that model: encoder.weight, rnn.weight_ih_l0, ..., decoder.weight, decoder.bias.

import type { Backend, Buf } from '../backend/backend.js';
import { Embedding } from '../layers/embedding.js';
import { Linear } from '../layers/linear.js';
import { Param, namedParameters } from '../layers/param.js';
import { RecurrentStack, type RnnMode } from '../layers/recurrent.js';
import type { NormKind } from '../norm/norm.js';
import { Rng } from '../util/rng.js';

export type CellKind = 'lstm' | 'gru' | 'rnn' | 'rnn_relu';

export interface CharLMConfig {
  cell: CellKind;
  vocabSize: number;
  embedding: number;
  hidden: number;
  layers: number;
  dropout: number;
  /** Normalization inside the recurrent layers (default none). */
  norm?: NormKind;
  /** Dilation of each recurrent layer (default 1). */
  dilation?: number[];
  /** Stride over time of each recurrent layer (default 1); the output is repeated back to every step. */
  stride?: number[];
}

export const cellMode: Record<CellKind, RnnMode> = { lstm: 'LSTM', gru: 'GRU', rnn: 'RNN_TANH', rnn_relu: 'RNN_RELU' };

export class CharLM {
  readonly encoder: Embedding;
  readonly rnn: RecurrentStack;
  readonly decoder: Linear;
  readonly params: Map<string, Param>;
  /** Carried recurrent state [L, B, H] (truncated BPTT: values carried, gradient cut). */
  h: Buf;
  c: Buf;
  private B = 0;
  private T = 0;
  private cap = 0;
  private emb!: Buf;
  private logits!: Buf;
  private dlogits!: Buf;
  private mask!: Buf;
  private dropped!: Buf;
  private ids: Int32Array = new Int32Array(0);
  private rng: Rng;
  private train = false;
  /** Steps since the state was reset (dilated and strided layers need the phase). */
  private tau = 0;
  /** Dilated or strided layers: inference runs one step at a time (see RecurrentStack.inferStep). */
  private readonly stepwise: boolean;
  /** The recurrent output repeated back to every step (strided layers) [T, B, H]. */
  private up!: Buf;
  private dUp!: Buf;
  /** The decoder's input of the last forward (the RNN output, after dropout). */
  private lastOut!: Buf;
  private lastOutOff = 0;

  constructor(readonly be: Backend, readonly config: CharLMConfig, seed = 1) {
    const { vocabSize: V, embedding: E, hidden: H, layers: L, dropout } = config;
    if (!(config.cell in cellMode)) throw new Error(`unknown cell '${config.cell}' (expected lstm, gru, rnn or rnn_relu)`);
    const rng = new Rng(seed);
    this.encoder = new Embedding(be, V, E, rng);
    this.rnn = new RecurrentStack(be, cellMode[config.cell], {
      inputSize: E, hiddenSize: H, numLayers: L, dropout, seed: rng.nextU32(),
      norm: config.norm ?? 'none', dilation: config.dilation, stride: config.stride,
    });
    this.stepwise = this.rnn.alignment > 1;
    this.decoder = new Linear(be, H, V, rng);
    // word_language_model's init_weights: encoder and decoder U(-0.1, 0.1), decoder bias 0.
    this.encoder.weight.uniform(rng, -0.1, 0.1);
    this.decoder.weight.uniform(rng, -0.1, 0.1);
    this.decoder.bias!.data.fill(0);
    this.params = namedParameters({ encoder: this.encoder, rnn: this.rnn, decoder: this.decoder });
    this.rng = new Rng(rng.nextU32());
    this.h = be.alloc(0);
    this.c = be.alloc(0);
  }

  parameters(): Param[] {
    return [...this.params.values()];
  }

  get dropoutRngState(): number[][] { return [this.rng.getState(), this.rnn.rngState]; }
  set dropoutRngState(s: number[][]) { this.rng.setState(s[0]); this.rnn.rngState = s[1]; }

  /** Zero the carried state for batch size B. */
  resetState(B: number): void {
    const n = this.rnn.stateLength(B);
    this.tau = 0;
    if (this.h.length !== n) {
      this.be.free(this.h); this.be.free(this.c);
      this.h = this.be.alloc(n);
      this.c = this.be.alloc(this.config.cell === 'lstm' ? n : 0);
    } else {
      this.be.fill(n, 0, this.h, 0);
      this.be.fill(this.c.length, 0, this.c, 0);
    }
  }

  private ensure(T: number, B: number): void {
    const n = T * B, { embedding: E, hidden: H, vocabSize: V } = this.config;
    if (this.h.length !== this.rnn.stateLength(B)) this.resetState(B);
    this.T = T; this.B = B;
    if (n <= this.cap) return;
    for (const b of [this.emb, this.logits, this.dlogits, this.mask, this.dropped, this.up, this.dUp]) if (b) this.be.free(b);
    const strided = this.rnn.outputSteps(1 << 20) !== 1 << 20;
    this.up = this.be.alloc(strided || this.stepwise ? n * H : 0);
    this.dUp = this.be.alloc(strided ? n * H : 0);
    this.emb = this.be.alloc(n * E);
    this.logits = this.be.alloc(n * V);
    this.dlogits = this.be.alloc(n * V);
    this.mask = this.be.alloc(this.config.dropout > 0 ? n * H : 0);
    this.dropped = this.be.alloc(this.config.dropout > 0 ? n * H : 0);
    this.ids = new Int32Array(n);
    this.cap = n;
  }

  /**
   * ids: [T, B] time-major. Returns logits [T*B, V] (a buffer owned by the model, valid until the next call).
   * The carried state is updated to the final state.
   */
  forward(ids: Int32Array, T: number, B: number, train: boolean): Buf {
    if (ids.length < T * B) throw new Error(`CharLM.forward: ids has ${ids.length} values, expected [T=${T}, B=${B}] = ${T * B}`);
    this.ensure(T, B);
    this.train = train;
    const { hidden: H, dropout } = this.config, n = T * B;
    this.ids.set(ids.subarray(0, n));
    this.encoder.forward(n, this.ids, this.emb, 0);
    const lstm = this.config.cell === 'lstm', align = this.rnn.alignment;
    let out: Buf, outOff: number;
    if (this.stepwise && !train) {
      // inference of dilated / strided layers: one step at a time from the carried state and phase
      for (let t = 0; t < T; t++) {
        const o = this.rnn.inferStep(this.emb, t * B * this.config.embedding, B, this.h, lstm ? this.c : null, this.tau + t);
        this.be.copy(B * H, o.out, o.outOff, this.up, t * B * H);
      }
      out = this.up; outOff = 0;
    } else {
      if (T % align !== 0 || this.tau % align !== 0) {
        throw new Error(`CharLM.forward: with dilation/stride the training steps (bptt) must be multiples of ${align}, got ${T} at step ${this.tau}`);
      }
      const r = this.rnn.forward(this.emb, 0, T, B, this.h, lstm ? this.c : null, train);
      out = r.out; outOff = r.outOff;
      if (r.outT !== T) { // strided: step t uses the output of the last strided step at or before t (causal)
        const S = T / r.outT;
        for (let t = 0; t < T; t++) this.be.copy(B * H, r.out, r.outOff + Math.floor(t / S) * B * H, this.up, t * B * H);
        out = this.up; outOff = 0;
      }
      this.be.copy(this.h.length, r.hN, 0, this.h, 0);
      if (r.cN) this.be.copy(this.c.length, r.cN, 0, this.c, 0);
    }
    this.tau += T;
    if (train && dropout > 0) {
      const keep = 1 - dropout, inv = 1 / keep;
      for (let i = 0; i < n * H; i++) this.mask[i] = this.rng.next() < keep ? inv : 0;
      this.be.hostWrote?.(this.mask);
      this.be.mul(n * H, out, outOff, this.mask, 0, this.dropped, 0);
      out = this.dropped; outOff = 0;
    }
    this.lastOut = out; this.lastOutOff = outOff;
    this.decoder.forward(n, out, outOff, this.logits, 0);
    return this.logits;
  }

  /** Mean cross-entropy (nats) of the last forward's logits against targets [T, B]; no gradient. */
  loss(targets: Int32Array): number {
    const n = this.T * this.B;
    return this.be.softmaxCrossEntropy(n, this.config.vocabSize, this.logits, 0, targets, null, 0, 0) / n;
  }

  /**
   * Mean cross-entropy against targets [T, B], and its gradient into every parameter (accumulated).
   * Call after forward(..., train = true).
   */
  backward(targets: Int32Array): number {
    const n = this.T * this.B, { vocabSize: V, hidden: H, dropout } = this.config;
    const loss = this.be.softmaxCrossEntropy(n, V, this.logits, 0, targets, this.dlogits, 0, 1 / n) / n;
    const dOut = this.decoder.backward(n, this.lastOut, this.lastOutOff, this.dlogits, 0, true)!;
    if (this.train && dropout > 0) this.be.mul(n * H, dOut, 0, this.mask, 0, dOut, 0);
    let g0 = dOut;
    const outT = this.rnn.outputSteps(this.T), B = this.B;
    if (outT !== this.T) { // strided: each output step gathers the gradients of the steps that repeated it
      const S = this.T / outT;
      this.be.fill(outT * B * H, 0, this.dUp, 0);
      for (let t = 0; t < this.T; t++) this.be.addTo(B * H, dOut, t * B * H, this.dUp, Math.floor(t / S) * B * H);
      g0 = this.dUp;
    }
    const g = this.rnn.backward(g0, 0, null, null, true);
    this.encoder.backward(n, this.ids, g.dx!, 0);
    return loss;
  }
}
