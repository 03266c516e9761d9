// A character decoder for the generating shapes (one-to-many, many-to-many): an LSTM whose initial state is
// given (from a vector, or from an encoder), trained with teacher forcing (the true previous character is the
// input), decoded greedily one step at a time. With attention (Luong et al. 2015: "dot" score, or Bahdanau's
// additive score) it reads the encoder outputs at every step:
//   h_t = LSTM(emb(y_{t-1}), h_{t-1});  c_t = attention(h_t, encoder outputs);
//   o_t = tanh(W_c c_t + W_h h_t + b);  logits_t = W_out o_t + b_out
// Without attention: logits_t = W_out h_t + b_out.
// Teacher forcing runs the whole target sequence through the fused LSTM and the attention at once; greedy
// decoding reuses the same buffers step by step (T = 1).

import type { Backend, Buf } from '../backend/backend.js';
import { AdditiveAttention, DotAttention } from '../layers/attention.js';
import { Embedding } from '../layers/embedding.js';
import { Linear } from '../layers/linear.js';
import { Param, type HasParams } from '../layers/param.js';
import { nestedParameters } from '../layers/nested.js';
import { RecurrentStack } from '../layers/recurrent.js';
import type { Rng } from '../util/rng.js';

export interface DecoderConfig {
  vocabSize: number;
  embedding: number;
  hidden: number;
  attention: boolean;
  /** Score of the attention: 'dot' (Luong, default) or 'additive' (Bahdanau, with parameters). */
  score?: 'dot' | 'additive';
}

export interface EncoderMemory {
  out: Buf;
  off: number;
  S: number;
  lens: Int32Array;
}

export class CharDecoder implements HasParams {
  readonly embed: Embedding;
  readonly rnn: RecurrentStack;
  readonly wc: Linear | null = null;
  readonly wh: Linear | null = null;
  readonly proj: Linear;
  readonly attn: DotAttention | AdditiveAttention | null = null;
  readonly params: Map<string, Param>;
  private cap = 0;
  private emb!: Buf;
  private comb!: Buf;
  private dcomb!: Buf;
  private dhs!: Buf;
  private logits!: Buf;
  private dlogits!: Buf;
  private ids = new Int32Array(0);
  private T = 0;
  private B = 0;
  private hs: Buf | null = null;
  private hsOff = 0;
  private ctx: Buf | null = null;
  hN!: Buf;
  cN!: Buf;

  constructor(readonly be: Backend, readonly config: DecoderConfig, rng: Rng) {
    const { vocabSize: V, embedding: E, hidden: H } = config;
    this.embed = new Embedding(be, V, E, rng);
    this.rnn = new RecurrentStack(be, 'LSTM', { inputSize: E, hiddenSize: H, seed: rng.nextU32() });
    const children: Record<string, HasParams> = { embedding: this.embed, rnn: this.rnn };
    if (config.attention) {
      if (config.score === 'additive') {
        const add = new AdditiveAttention(be, H, H, rng);
        this.attn = add;
        children.attention = add;
      } else this.attn = new DotAttention(be, H);
      this.wc = new Linear(be, H, H, rng);
      this.wh = new Linear(be, H, H, rng, false);
      children.attn_combine_context = this.wc;
      children.attn_combine_hidden = this.wh;
    }
    this.proj = new Linear(be, H, V, rng);
    children.out = this.proj;
    this.params = nestedParameters(children);
  }

  parameters(): Param[] { return [...this.params.values()]; }

  private ensure(T: number, B: number): void {
    const n = T * B, { embedding: E, hidden: H, vocabSize: V } = this.config;
    this.T = T; this.B = B;
    if (n <= this.cap) return;
    for (const b of [this.emb, this.comb, this.dcomb, this.dhs, this.logits, this.dlogits]) if (b) this.be.free(b);
    this.emb = this.be.alloc(n * E); this.comb = this.be.alloc(n * H); this.dcomb = this.be.alloc(n * H);
    this.dhs = this.be.alloc(n * H); this.logits = this.be.alloc(n * V); this.dlogits = this.be.alloc(n * V);
    this.ids = new Int32Array(n);
    this.cap = n;
  }

  /**
   * inputs [T, B] (previous characters), initial state h0 [B, H] (c0 [B, H] or null = zeros), encoder
   * memory for attention. Returns logits [T*B, V] (owned by the decoder). hN/cN hold the final state.
   */
  forward(inputs: Int32Array, T: number, B: number, h0: Buf, c0: Buf | null, mem: EncoderMemory | null, train: boolean): Buf {
    this.ensure(T, B);
    const n = T * B, H = this.config.hidden, be = this.be;
    this.ids.set(inputs.subarray(0, n));
    this.embed.forward(n, this.ids, this.emb, 0);
    const r = this.rnn.forward(this.emb, 0, T, B, h0, c0, train);
    this.hs = r.out; this.hsOff = r.outOff; this.hN = r.hN; this.cN = r.cN!;
    let top = r.out, topOff = r.outOff;
    if (this.attn) {
      if (!mem) throw new Error('CharDecoder: attention needs the encoder memory');
      this.ctx = this.attn.forward(r.out, r.outOff, T, mem.out, mem.off, mem.S, B, mem.lens);
      this.wc!.forward(n, this.ctx, 0, this.comb, 0);
      this.wh!.forward(n, r.out, r.outOff, this.dcomb, 0); // dcomb as scratch
      be.addTo(n * H, this.dcomb, 0, this.comb, 0);
      be.rnnCellForward('tanh', n, H, this.comb, 0);
      top = this.comb; topOff = 0;
    }
    this.proj.forward(n, top, topOff, this.logits, 0);
    return this.logits;
  }

  /**
   * Mean cross-entropy over targets >= 0 (padding: -1) and the gradients. Returns the loss, the gradients
   * w.r.t. the initial state (dh0, dc0 [B, H]) and, with attention, w.r.t. the encoder outputs (dmem [S, B, H]).
   */
  backward(targets: Int32Array): { loss: number; dh0: Buf; dc0: Buf; dmem: Buf | null } {
    const { T, B } = this, n = T * B, { hidden: H, vocabSize: V } = this.config, be = this.be;
    let m = 0;
    for (let i = 0; i < n; i++) if (targets[i] >= 0) m++;
    const loss = be.softmaxCrossEntropy(n, V, this.logits, 0, targets, this.dlogits, 0, 1 / Math.max(1, m)) / Math.max(1, m);
    let dmem: Buf | null = null;
    if (this.attn) {
      const dtop = this.proj.backward(n, this.comb, 0, this.dlogits, 0, true)!;
      be.rnnCellBackward('tanh', n, H, this.comb, 0, dtop, 0, this.dcomb, 0);
      const dctx = this.wc!.backward(n, this.ctx!, 0, this.dcomb, 0, true)!;
      const dh = this.wh!.backward(n, this.hs!, this.hsOff, this.dcomb, 0, true)!;
      be.copy(n * H, dh, 0, this.dhs, 0);
      const g = this.attn.backward(dctx, 0);
      be.addTo(n * H, g.dq, 0, this.dhs, 0);
      dmem = g.dk;
    } else {
      const dh = this.proj.backward(n, this.hs!, this.hsOff, this.dlogits, 0, true)!;
      be.copy(n * H, dh, 0, this.dhs, 0);
    }
    const g = this.rnn.backward(this.dhs, 0, null, null, true);
    this.embed.backward(n, this.ids, g.dx!, 0);
    return { loss, dh0: g.dh0, dc0: g.dc0!, dmem };
  }

  /**
   * Greedy decoding: start from `bos`, feed back the argmax, stop at `eos` or maxLen. h0/c0 [B, H] are not
   * modified. Returns the generated ids of each column (eos excluded).
   */
  greedy(B: number, h0: Buf, c0: Buf | null, mem: EncoderMemory | null, bos: number, eos: number, maxLen: number): number[][] {
    const H = this.config.hidden, V = this.config.vocabSize, be = this.be;
    const h = be.alloc(B * H), c = be.alloc(B * H);
    be.copy(B * H, h0, 0, h, 0);
    if (c0) be.copy(B * H, c0, 0, c, 0);
    const inp = new Int32Array(B).fill(bos), out: number[][] = Array.from({ length: B }, () => []), done = new Uint8Array(B);
    for (let t = 0; t < maxLen && done.some((d) => !d); t++) {
      const logits = this.forward(inp, 1, B, h, c, mem, false);
      be.copy(B * H, this.hN, 0, h, 0);
      be.copy(B * H, this.cN, 0, c, 0);
      for (let b = 0; b < B; b++) {
        let best = 0, bv = -Infinity;
        for (let j = 0; j < V; j++) if (logits[b * V + j] > bv) { bv = logits[b * V + j]; best = j; }
        inp[b] = best;
        if (done[b]) continue;
        if (best === eos) done[b] = 1; else out[b].push(best);
      }
    }
    be.free(h); be.free(c);
    return out;
  }

  /**
   * Beam search for one sequence: K hypotheses decoded as a batch of K. h0/c0 hold the initial state at row
   * `col` of [B, H] buffers; mem (optional) is the encoder memory of B columns, of which column `col` is used.
   * Scores are summed log-probabilities; finished hypotheses are ranked by their mean log-probability per
   * token (eos included), so that short outputs are not favoured. K = 1 is greedy decoding.
   */
  beam(K: number, h0: Buf, c0: Buf | null, col: number, mem: EncoderMemory | null, bos: number, eos: number, maxLen: number): number[] {
    const H = this.config.hidden, V = this.config.vocabSize, be = this.be;
    const h = be.alloc(K * H), c = be.alloc(K * H), h2 = be.alloc(K * H), c2 = be.alloc(K * H);
    for (let k = 0; k < K; k++) { be.copy(H, h0, col * H, h, k * H); if (c0) be.copy(H, c0, col * H, c, k * H); }
    let memK: EncoderMemory | null = null;
    if (mem) {
      const S = mem.S, B = mem.lens.length, out = be.alloc(S * K * H);
      for (let s = 0; s < S; s++) for (let k = 0; k < K; k++) be.copy(H, mem.out, mem.off + (s * B + col) * H, out, (s * K + k) * H);
      memK = { out, off: 0, S, lens: new Int32Array(K).fill(mem.lens[col]) };
    }
    let hyps = [{ ids: [] as number[], score: 0 }];
    const done: { ids: number[]; norm: number }[] = [];
    const inp = new Int32Array(K);
    for (let t = 0; t < maxLen && hyps.length > 0 && done.length < K; t++) {
      for (let k = 0; k < K; k++) inp[k] = k < hyps.length ? (t === 0 ? bos : hyps[k].ids[hyps[k].ids.length - 1]) : bos;
      const logits = this.forward(inp, 1, K, h, c, memK, false);
      const cand: { k: number; v: number; score: number }[] = [];
      for (let k = 0; k < hyps.length; k++) {
        let m = -Infinity, z = 0;
        for (let v = 0; v < V; v++) m = Math.max(m, logits[k * V + v]);
        for (let v = 0; v < V; v++) z += Math.exp(logits[k * V + v] - m);
        const lz = m + Math.log(z);
        for (let v = 0; v < V; v++) cand.push({ k, v, score: hyps[k].score + logits[k * V + v] - lz });
      }
      cand.sort((a, b) => b.score - a.score);
      const next: { ids: number[]; score: number }[] = [];
      const parents: number[] = [];
      for (const cnd of cand) {
        if (next.length + done.length >= K) break;
        const ids = [...hyps[cnd.k].ids, cnd.v];
        if (cnd.v === eos) done.push({ ids: ids.slice(0, -1), norm: cnd.score / ids.length });
        else { next.push({ ids, score: cnd.score }); parents.push(cnd.k); }
      }
      parents.forEach((pk, j) => { be.copy(H, this.hN, pk * H, h2, j * H); be.copy(H, this.cN, pk * H, c2, j * H); });
      be.copy(K * H, h2, 0, h, 0); be.copy(K * H, c2, 0, c, 0);
      hyps = next;
    }
    for (const hy of hyps) done.push({ ids: hy.ids, norm: hy.score / Math.max(1, hy.ids.length) });
    for (const b of [h, c, h2, c2]) be.free(b);
    if (memK) be.free(memK.out);
    done.sort((a, b) => b.norm - a.norm);
    return done[0]?.ids ?? [];
  }
}
