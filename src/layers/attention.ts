// Dot-product attention (Luong et al. 2015, "dot" score), over all decoder steps at once.
//
//   scores[b, t, s] = q[t, b, :] · k[s, b, :]                    (s < srcLen[b]; the rest is masked out)
//   weights[b, t, :] = softmax_s(scores[b, t, :])
//   context[t, b, :] = sum_s weights[b, t, s] * k[s, b, :]      (keys are the values: encoder outputs)
//
// PyTorch equivalent (batch-first): `w = softmax(bmm(Q, K^T).masked_fill(mask, -inf), -1); C = bmm(w, K)`.
// Queries [T, B, H] and keys [S, B, H] are time-major; each batch column b is addressed in place with a leading
// dimension of B*H, so the layer is 2 gemms per batch column forward and 4 backward, no copies.
//
// The row softmax uses a backend method `softmaxRows` when the backend has one, else the reference loop below.

import { immediateOnly } from '../backend/sync.js';
import type { Backend, Buf } from '../backend/backend.js';
import { copy2d } from '../backend/generic.js';
import type { Rng } from '../util/rng.js';
import { Param, type HasParams } from './param.js';

/** Reference masked row softmax: x[r, 0..len) <- softmax, x[r, len..n) <- 0. */
export function softmaxRowsRef(rows: number, n: number, len: number, x: Buf, xOff: number): void {
  for (let r = 0; r < rows; r++) {
    const o = xOff + r * n;
    let m = -Infinity;
    for (let s = 0; s < len; s++) if (x[o + s] > m) m = x[o + s];
    let sum = 0;
    for (let s = 0; s < len; s++) { const e = Math.exp(x[o + s] - m); x[o + s] = e; sum += e; }
    const inv = sum > 0 ? 1 / sum : 0;
    for (let s = 0; s < len; s++) x[o + s] *= inv;
    for (let s = len; s < n; s++) x[o + s] = 0;
  }
}

/** An optional backend kernel (not in the Backend interface yet): masked row softmax in place. */
export interface SoftmaxRows {
  softmaxRows(rows: number, n: number, len: number, x: Buf, xOff: number): void;
}

export class DotAttention {
  /** Attention weights [B, T, S] of the last forward. */
  weights: Buf;
  private ctx: Buf;
  private dq: Buf;
  private dk: Buf;
  private dw: Buf;
  private cap = { w: 0, ctx: 0, dk: 0 };
  private q: Buf | null = null;
  private qOff = 0;
  private k: Buf | null = null;
  private kOff = 0;
  private T = 0;
  private S = 0;
  private B = 0;
  private lens: Int32Array = new Int32Array(0);

  constructor(readonly be: Backend, readonly hidden: number) {
    immediateOnly(be, 'dot attention');
    this.weights = be.alloc(0); this.ctx = be.alloc(0); this.dq = be.alloc(0); this.dk = be.alloc(0); this.dw = be.alloc(0);
  }

  private softmax(rows: number, n: number, len: number, x: Buf, off: number): void {
    const be = this.be as Backend & Partial<SoftmaxRows>;
    if (be.softmaxRows) be.softmaxRows(rows, n, len, x, off);
    else softmaxRowsRef(rows, n, len, x, off);
  }

  /**
   * q [T, B, H] at qOff, k [S, B, H] at kOff (both kept by reference for the backward); srcLen[b] = valid
   * source steps of column b (null: all S). Returns the context [T, B, H] (owned by the layer).
   */
  forward(q: Buf, qOff: number, T: number, k: Buf, kOff: number, S: number, B: number, srcLen: Int32Array | null): Buf {
    const { be, hidden: H } = this, ld = B * H;
    this.q = q; this.qOff = qOff; this.k = k; this.kOff = kOff; this.T = T; this.S = S; this.B = B;
    if (this.lens.length < B) this.lens = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const len = srcLen ? srcLen[b] : S;
      if (!(len >= 1 && len <= S)) throw new Error(`DotAttention: source length ${len} of column ${b} is outside [1, ${S}]`);
      this.lens[b] = len;
    }
    if (this.cap.w < B * T * S) {
      be.free(this.weights); be.free(this.dw);
      this.weights = be.alloc(B * T * S); this.dw = be.alloc(B * T * S); this.cap.w = B * T * S;
    }
    if (this.cap.ctx < T * B * H) { be.free(this.ctx); be.free(this.dq); this.ctx = be.alloc(T * B * H); this.dq = be.alloc(T * B * H); this.cap.ctx = T * B * H; }
    if (this.cap.dk < S * B * H) { be.free(this.dk); this.dk = be.alloc(S * B * H); this.cap.dk = S * B * H; }
    const w = this.weights;
    for (let b = 0; b < B; b++) {
      const len = this.lens[b], wOff = b * T * S;
      // scores[t, s] = Q_b K_b^T over the valid source steps (the masked ones are zeroed by the softmax)
      be.gemm(false, true, T, len, H, q, qOff + b * H, ld, k, kOff + b * H, ld, 0, w, wOff, S);
      this.softmax(T, S, len, w, wOff);
      be.gemm(false, false, T, H, len, w, wOff, S, k, kOff + b * H, ld, 0, this.ctx, b * H, ld);
    }
    return this.ctx;
  }

  /** dctx [T, B, H] -> gradients w.r.t. q [T, B, H] and k [S, B, H] (buffers owned by the layer). */
  backward(dctx: Buf, dOff: number): { dq: Buf; dk: Buf } {
    if (!this.q || !this.k) throw new Error('DotAttention: backward called before forward');
    const { be, hidden: H, T, S, B, q, qOff, k, kOff } = this, ld = B * H;
    const w = this.weights, dw = this.dw;
    for (let b = 0; b < B; b++) {
      const len = this.lens[b], wOff = b * T * S;
      // dW = dC V^T   [T, len]
      be.gemm(false, true, T, len, H, dctx, dOff + b * H, ld, k, kOff + b * H, ld, 0, dw, wOff, S);
      // dV = W^T dC   [len, H]  (into dk)
      be.gemm(true, false, len, H, T, w, wOff, S, dctx, dOff + b * H, ld, 0, this.dk, b * H, ld);
      // softmax backward: dS = W * (dW - rowsum(dW * W))
      for (let t = 0; t < T; t++) {
        const o = wOff + t * S;
        let dot = 0;
        for (let s = 0; s < len; s++) dot += dw[o + s] * w[o + s];
        for (let s = 0; s < len; s++) dw[o + s] = w[o + s] * (dw[o + s] - dot);
      }
      // dQ = dS K   [T, H];  dK += dS^T Q   [len, H]
      be.gemm(false, false, T, H, len, dw, wOff, S, k, kOff + b * H, ld, 0, this.dq, b * H, ld);
      be.gemm(true, false, len, H, T, dw, wOff, S, q, qOff + b * H, ld, 1, this.dk, b * H, ld);
      // masked source steps get no gradient
      for (let s = len; s < S; s++) be.fill(H, 0, this.dk, s * ld + b * H);
    }
    return { dq: this.dq, dk: this.dk };
  }
}

/**
 * Additive attention (Bahdanau et al. 2015):
 *   scores[b, t, s] = v · tanh(W_q q[t, b] + W_k k[s, b])      (s < srcLen[b])
 * then the same masked softmax and context as DotAttention (keys are the values). Parameters, PyTorch-style:
 * `query.weight` [A, H] (no bias), `key.weight` [A, H] (no bias), `v.weight` [1, A] (nn.Linear(A, 1, bias=False)).
 * Projections are one gemm each over all steps; the tanh features of every (b, t, s) are kept for the backward.
 */
export class AdditiveAttention implements HasParams {
  readonly wq: Param;
  readonly wk: Param;
  readonly v: Param;
  readonly params: Map<string, Param>;
  weights: Buf;
  private qp: Buf; private kp: Buf; private feats: Buf; private ctx: Buf;
  private dqp: Buf; private dkp: Buf; private dq: Buf; private dk: Buf; private dw: Buf; private dfeat: Buf;
  private q: Buf | null = null; private qOff = 0; private k: Buf | null = null; private kOff = 0;
  private T = 0; private S = 0; private B = 0;
  private lens: Int32Array = new Int32Array(0);

  constructor(readonly be: Backend, readonly hidden: number, readonly attnSize: number, rng: Rng) {
    immediateOnly(be, 'additive attention');
    const H = hidden, A = attnSize;
    this.wq = new Param(be, 'weight', [A, H]).uniform(rng, -1 / Math.sqrt(H), 1 / Math.sqrt(H));
    this.wk = new Param(be, 'weight', [A, H]).uniform(rng, -1 / Math.sqrt(H), 1 / Math.sqrt(H));
    this.v = new Param(be, 'weight', [1, A]).uniform(rng, -1 / Math.sqrt(A), 1 / Math.sqrt(A));
    this.params = new Map([['query.weight', this.wq], ['key.weight', this.wk], ['v.weight', this.v]]);
    const z = (): Buf => be.alloc(0);
    this.weights = z(); this.qp = z(); this.kp = z(); this.feats = z(); this.ctx = z();
    this.dqp = z(); this.dkp = z(); this.dq = z(); this.dk = z(); this.dw = z(); this.dfeat = z();
  }

  parameters(): Param[] { return [...this.params.values()]; }

  private grow(name: 'weights' | 'qp' | 'kp' | 'feats' | 'ctx' | 'dqp' | 'dkp' | 'dq' | 'dk' | 'dw' | 'dfeat', n: number): void {
    if (this[name].length < n) { this.be.free(this[name]); this[name] = this.be.alloc(n); }
  }

  forward(q: Buf, qOff: number, T: number, k: Buf, kOff: number, S: number, B: number, srcLen: Int32Array | null): Buf {
    const { be, hidden: H, attnSize: A } = this, ld = B * H;
    this.q = q; this.qOff = qOff; this.k = k; this.kOff = kOff; this.T = T; this.S = S; this.B = B;
    if (this.lens.length < B) this.lens = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const len = srcLen ? srcLen[b] : S;
      if (!(len >= 1 && len <= S)) throw new Error(`AdditiveAttention: source length ${len} of column ${b} is outside [1, ${S}]`);
      this.lens[b] = len;
    }
    this.grow('weights', B * T * S); this.grow('dw', B * T * S); this.grow('qp', T * B * A); this.grow('kp', S * B * A);
    this.grow('feats', B * T * S * A); this.grow('ctx', T * B * H);
    be.gemm(false, true, T * B, A, H, q, qOff, H, this.wq.data, 0, H, 0, this.qp, 0, A);
    be.gemm(false, true, S * B, A, H, k, kOff, H, this.wk.data, 0, H, 0, this.kp, 0, A);
    const w = this.weights, f = this.feats;
    for (let b = 0; b < B; b++) {
      const len = this.lens[b];
      for (let t = 0; t < T; t++) {
        const fo = ((b * T + t) * S) * A, wo = (b * T + t) * S;
        copy2d(be, len, A, this.kp, b * A, B * A, f, fo, A); // the keys' projections of column b, contiguous
        be.addRowVector(len, A, f, fo, this.qp, (t * B + b) * A, f, fo);
        be.rnnCellForward('tanh', len, A, f, fo);
        be.gemm(false, true, len, 1, A, f, fo, A, this.v.data, 0, A, 0, w, wo, 1);
      }
      softmaxRowsRef(T, S, len, w, b * T * S);
      be.gemm(false, false, T, H, len, w, b * T * S, S, k, kOff + b * H, ld, 0, this.ctx, b * H, ld);
    }
    return this.ctx;
  }

  /** dctx [T, B, H] -> dq [T, B, H], dk [S, B, H]; accumulates the parameters' gradients. */
  backward(dctx: Buf, dOff: number): { dq: Buf; dk: Buf } {
    if (!this.q || !this.k) throw new Error('AdditiveAttention: backward called before forward');
    const { be, hidden: H, attnSize: A, T, S, B, q, qOff, k, kOff } = this, ld = B * H;
    this.grow('dqp', T * B * A); this.grow('dkp', S * B * A); this.grow('dq', T * B * H); this.grow('dk', S * B * H); this.grow('dfeat', S * A);
    const w = this.weights, dw = this.dw, f = this.feats, df = this.dfeat;
    be.fill(S * B * A, 0, this.dkp, 0);
    be.fill(T * B * A, 0, this.dqp, 0);
    for (let b = 0; b < B; b++) {
      const len = this.lens[b], wOff = b * T * S;
      be.gemm(false, true, T, len, H, dctx, dOff + b * H, ld, k, kOff + b * H, ld, 0, dw, wOff, S); // dW = dC V^T
      be.gemm(true, false, len, H, T, w, wOff, S, dctx, dOff + b * H, ld, 0, this.dk, b * H, ld); // dV = W^T dC
      for (let s = len; s < S; s++) be.fill(H, 0, this.dk, s * ld + b * H);
      for (let t = 0; t < T; t++) {
        const o = wOff + t * S;
        let dot = 0;
        for (let s = 0; s < len; s++) dot += dw[o + s] * w[o + s];
        for (let s = 0; s < len; s++) dw[o + s] = w[o + s] * (dw[o + s] - dot); // d scores
        const fo = ((b * T + t) * S) * A;
        // scores = F v^T: dv += dscores^T F; dF = dscores v; through tanh
        be.gemm(true, false, 1, A, len, dw, o, 1, f, fo, A, 1, this.v.grad, 0, A);
        be.gemm(false, false, len, A, 1, dw, o, 1, this.v.data, 0, A, 0, df, 0, A);
        be.rnnCellBackward('tanh', len, A, f, fo, df, 0, df, 0);
        be.sumRows(len, A, df, 0, this.dqp, (t * B + b) * A);
        for (let s = 0; s < len; s++) be.addTo(A, df, s * A, this.dkp, (s * B + b) * A);
      }
    }
    // through the projections: dW_q += dQp^T q, dq = dQp W_q (likewise keys; dk also has the values' part)
    be.gemm(true, false, A, H, T * B, this.dqp, 0, A, q, qOff, H, 1, this.wq.grad, 0, H);
    be.gemm(false, false, T * B, H, A, this.dqp, 0, A, this.wq.data, 0, H, 0, this.dq, 0, H);
    be.gemm(true, false, A, H, S * B, this.dkp, 0, A, k, kOff, H, 1, this.wk.grad, 0, H);
    be.gemm(false, false, S * B, H, A, this.dkp, 0, A, this.wk.data, 0, H, 1, this.dk, 0, H);
    return { dq: this.dq, dk: this.dk };
  }
}
