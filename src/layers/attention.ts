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

import type { Backend, Buf } from '../backend/backend.js';

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
