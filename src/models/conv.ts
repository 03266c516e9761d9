// The "simple solutions" before recurrent nets, as character language models with CharLM's interface
// (forward(ids, T, B, train) -> logits, loss, backward, parameters, params, resetState, h, c), so that the
// same Trainer, evaluation and `rnnkit train --model window|conv` drive them:
//
//   window : the fixed-window MLP (Bengio et al. 2003): the k previous characters' embeddings, concatenated,
//            -> hidden layer (ReLU) -> softmax. Written as one causal Conv1d of kernel k (the same map applied
//            at every position) -> ReLU -> Linear.
//   conv   : a temporal convolution (WaveNet/TCN-style): causal dilated Conv1d layers with dilations 1, 2, 4, ...
//            (+ ReLU) -> Linear; the receptive field doubles with each layer.
//
// "State" across truncated-BPTT batches is the context the receptive field needs: the last R-1 input ids of
// each column (R = receptive field), kept in `h` as numbers (-1 = before the start: a zero input vector).
// So a stream cut into batches gives the same predictions as the whole stream at once, as with CharLM.
// Parameter names: encoder.weight, conv.{0,2,4..}.weight/bias ([out, in, k] as nn.Conv1d), decoder.weight/bias.

import { immediateOnly } from '../backend/sync.js';
import type { Backend, Buf } from '../backend/backend.js';
import { Embedding } from '../layers/embedding.js';
import { Linear } from '../layers/linear.js';
import { Param } from '../layers/param.js';
import { nestedParameters } from '../layers/nested.js';
import { Rng } from '../util/rng.js';
import { ConvStack } from './convstack.js';
import type { CharLM } from './charlm.js';

export type ConvLMKind = 'window' | 'conv';

export interface ConvLMConfig {
  kind: ConvLMKind;
  vocabSize: number;
  embedding: number;
  /** Channels of the conv layers (the hidden layer of the window MLP). */
  hidden: number;
  kernel: number;
  /** Number of conv layers (window: 1). */
  layers: number;
}

export class ConvLM {
  readonly encoder: Embedding;
  readonly conv: ConvStack;
  readonly decoder: Linear;
  readonly params: Map<string, Param>;
  /** Carried context ids [(R-1) * B] (time-major), -1 = none. */
  h: Buf;
  /** Unused (CharLM's cell state); always empty. */
  c: Buf;
  /**
   * What the Trainer and checkpoints read of CharLM's recurrent stack: no time alignment constraint (any
   * number of steps per batch) and no non-parameter buffers.
   */
  readonly rnn = { alignment: 1, buffers: (): Map<string, { shape: number[]; data: ArrayLike<number> }> => new Map() };
  private B = 0;
  private T = 0;
  private cap = 0;
  private ids = new Int32Array(0);
  private full = new Int32Array(0);
  private emb!: Buf;
  private logits!: Buf;
  private dlogits!: Buf;
  private dseq!: Buf;
  private out: Buf | null = null;

  constructor(readonly be: Backend, readonly config: ConvLMConfig, seed = 1) {
    immediateOnly(be, 'the window and conv baselines (ConvLM)');
    const { kind, vocabSize: V, embedding: E, hidden: H, kernel: K } = config;
    if (kind !== 'window' && kind !== 'conv') throw new Error(`ConvLM: unknown kind '${kind}' (expected window or conv)`);
    const rng = new Rng(seed);
    this.encoder = new Embedding(be, V, E, rng);
    const dilations = kind === 'window' ? [1] : Array.from({ length: config.layers }, (_, k) => 2 ** k);
    this.conv = new ConvStack(be, { inputSize: E, channels: H, kernelSize: K, dilations, padding: 'causal' }, rng);
    this.decoder = new Linear(be, H, V, rng);
    this.encoder.weight.uniform(rng, -0.1, 0.1);
    this.params = nestedParameters({ encoder: this.encoder, conv: this.conv, decoder: this.decoder });
    this.h = be.alloc(0);
    this.c = be.alloc(0);
  }

  parameters(): Param[] { return [...this.params.values()]; }

  /** Input steps each prediction sees (the current one included). */
  get context(): number { return this.conv.receptiveField; }

  /** No dropout: nothing to save (CharLM compatibility). */
  get dropoutRngState(): number[][] { return []; }
  set dropoutRngState(_s: number[][]) { /* stateless */ }

  resetState(B: number): void {
    const n = (this.context - 1) * B;
    if (this.h.length !== n) { this.be.free(this.h); this.h = this.be.alloc(n); }
    this.be.fill(n, -1, this.h, 0);
    this.B = B;
  }

  forward(ids: Int32Array, T: number, B: number, _train: boolean): Buf {
    if (ids.length < T * B) throw new Error(`ConvLM.forward: ids has ${ids.length} values, expected [T=${T}, B=${B}]`);
    const { embedding: E, hidden: H, vocabSize: V } = this.config, C = this.context - 1, Tf = C + T, nf = Tf * B;
    if (this.h.length !== C * B) this.resetState(B);
    this.T = T; this.B = B;
    if (nf > this.cap) {
      for (const b of [this.emb, this.dseq, this.logits, this.dlogits]) if (b) this.be.free(b);
      this.emb = this.be.alloc(nf * E); this.dseq = this.be.alloc(nf * H);
      this.logits = this.be.alloc(T * B * V); this.dlogits = this.be.alloc(T * B * V);
      this.ids = new Int32Array(nf); this.full = new Int32Array(nf);
      this.cap = nf;
    }
    const logitsNeeded = T * B * V;
    if (this.logits.length < logitsNeeded) {
      this.be.free(this.logits); this.be.free(this.dlogits);
      this.logits = this.be.alloc(logitsNeeded); this.dlogits = this.be.alloc(logitsNeeded);
    }
    for (let i = 0; i < C * B; i++) this.full[i] = this.h[i];
    this.full.set(ids.subarray(0, T * B), C * B);
    for (let i = 0; i < nf; i++) this.ids[i] = this.full[i] < 0 ? 0 : this.full[i];
    this.encoder.forward(nf, this.ids, this.emb, 0);
    for (let i = 0; i < C * B; i++) if (this.full[i] < 0) this.be.fill(E, 0, this.emb, i * E);
    this.out = this.conv.forward(this.emb, 0, Tf, B);
    this.decoder.forward(T * B, this.out, C * B * H, this.logits, 0);
    for (let i = 0; i < C * B; i++) this.h[i] = this.full[T * B + i];
    return this.logits;
  }

  loss(targets: Int32Array): number {
    const n = this.T * this.B;
    return this.be.softmaxCrossEntropy(n, this.config.vocabSize, this.logits, 0, targets, null, 0, 0) / n;
  }

  backward(targets: Int32Array): number {
    const n = this.T * this.B, { vocabSize: V, hidden: H, embedding: E } = this.config, C = this.context - 1, B = this.B;
    const loss = this.be.softmaxCrossEntropy(n, V, this.logits, 0, targets, this.dlogits, 0, 1 / n) / n;
    this.be.fill(C * B * H, 0, this.dseq, 0);
    const dOut = this.decoder.backward(n, this.out!, C * B * H, this.dlogits, 0, true)!;
    this.be.copy(n * H, dOut, 0, this.dseq, C * B * H);
    const dx = this.conv.backward(this.dseq, 0, true)!;
    for (let i = 0; i < C * B; i++) if (this.full[i] < 0) this.be.fill(E, 0, dx, i * E);
    this.encoder.backward((C + this.T) * B, this.ids, dx, 0);
    return loss;
  }
}

/** Defaults of `rnnkit train --model window|conv`. */
export function convLMConfig(kind: ConvLMKind, vocabSize: number, o: { embedding?: number; hidden?: number; kernel?: number; layers?: number } = {}): ConvLMConfig {
  return kind === 'window'
    ? { kind, vocabSize, embedding: o.embedding ?? 64, hidden: o.hidden ?? 512, kernel: o.kernel ?? 8, layers: 1 }
    : { kind, vocabSize, embedding: o.embedding ?? 64, hidden: o.hidden ?? 256, kernel: o.kernel ?? 3, layers: o.layers ?? 5 };
}

/**
 * The model `rnnkit train --model <kind>` trains: undefined for 'rnn' (the Trainer builds its CharLM), else a
 * ConvLM behind CharLM's type (it has the members the Trainer, evaluation and checkpoint saving use).
 */
export function lmBaseline(be: Backend, kind: 'rnn' | ConvLMKind, vocabSize: number, o: { embedding?: number; hidden?: number } = {}, seed = 1): CharLM | undefined {
  if (kind === 'rnn') return undefined;
  return new ConvLM(be, convLMConfig(kind, vocabSize, o), seed) as unknown as CharLM;
}
