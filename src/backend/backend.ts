// The backend interface: the few kernels every layer is built from.
//
// Buffers are plain typed arrays allocated by the backend (`alloc`), so a backend that keeps its data
// in WebAssembly memory can hand out views on that memory and find the pointer from `byteOffset`.
// Every kernel takes (buffer, offset) pairs, offsets counted in elements, so that the layers' time loops
// address step t of a [T, B, N] workspace without creating views: no allocation per time step.
//
// Layout conventions (row-major, like PyTorch):
//   sequences are time-major [T, B, N]; weights are [out, in] (PyTorch `weight_ih_l0` is [4H, I]).
//
// The TypeScript reference backend (`js.ts`) is the specification; faster backends must match it
// to float32 rounding.

export type Buf = Float32Array | Float64Array;
export type DType = 'float32' | 'float64';

export type Activation = 'tanh' | 'relu';

/** A backend's packed snapshot of a gemm operand op(B) [K, N] (see Backend.packB). Opaque. */
export interface PackedB {
  readonly K: number;
  readonly N: number;
}

/** The cell of a batch-1 inference plan (Backend.step1Create). */
export type Step1Cell = 'lstm' | 'gru' | 'rnn_tanh' | 'rnn_relu';

/**
 * A character LM for batch-1 inference (sampling one token at a time): an embedding, a plain stack of
 * unidirectional recurrent layers (no normalization, dilation or stride) and a linear decoder, all in
 * PyTorch's layouts. G = 4 (LSTM), 3 (GRU) or 1 (RNN) gates.
 */
export interface Step1Spec {
  cell: Step1Cell;
  /** Vocabulary (rows of the embedding and of the decoder), embedding width, hidden units. */
  V: number;
  E: number;
  H: number;
  /** encoder.weight [V, E]. */
  embedding: Buf;
  /** Per layer: weight_ih [G*H, I] (I = E for layer 0, else H), weight_hh [G*H, H], bias_ih and bias_hh [G*H]. */
  layers: { wih: Buf; whh: Buf; bih: Buf; bhh: Buf }[];
  /** decoder.weight [V, H] and decoder.bias [V] (or null). */
  decoder: Buf;
  decoderBias: Buf | null;
}

/** A backend's compiled Step1Spec: its weights (a snapshot), its state and its logits. Opaque. */
export interface Step1Plan {
  readonly spec: Step1Spec;
}

export interface Backend {
  readonly name: string;
  readonly dtype: DType;
  /** Worker threads used by the big multiplies (1 = main thread only). */
  readonly threads: number;

  /** A zero-filled buffer of n elements, owned by this backend. */
  alloc(n: number): Buf;
  /** Give a buffer back (optional for garbage-collected backends). */
  free(buf: Buf): void;

  /**
   * C = beta*C + op(A) · op(B), with op(A) [M,K], op(B) [K,N], C [M,N].
   * op(A) = A (stored [M, lda]) or, when transA, A^T (A stored [K, lda]); likewise B.
   * beta is 0 (overwrite; C's old contents are ignored, even NaN) or 1 (accumulate).
   */
  gemm(
    transA: boolean, transB: boolean, M: number, N: number, K: number,
    A: Buf, aOff: number, lda: number,
    B: Buf, bOff: number, ldb: number,
    beta: 0 | 1, C: Buf, cOff: number, ldc: number,
  ): void;

  /**
   * Optional: pack op(B) [K, N] once (a weight matrix multiplied at every time step) for `gemmPacked`.
   * The packed copy is a snapshot: later writes to B do not reach it (pack again after an optimizer
   * step). Release it with `freePacked`. Saves the per-call packing: 5-10% of a recurrent step.
   */
  packB?(transB: boolean, K: number, N: number, B: Buf, bOff: number, ldb: number): PackedB;
  /** Optional: C = beta*C + op(A) · P, with P = op(B) [K, N] from packB; same semantics as gemm. */
  gemmPacked?(transA: boolean, M: number, A: Buf, aOff: number, lda: number, P: PackedB,
    beta: 0 | 1, C: Buf, cOff: number, ldc: number): void;
  /** Optional: release a PackedB. */
  freePacked?(P: PackedB): void;

  /** Y[r, :] = X[r, :] + b  for r < rows (Y may be X).  Row length n, rows contiguous. */
  addRowVector(rows: number, n: number, X: Buf, xOff: number, b: Buf, bOff: number, Y: Buf, yOff: number): void;
  /** db[j] += sum_r dY[r, j] (bias gradient). */
  sumRows(rows: number, n: number, dY: Buf, dyOff: number, db: Buf, dbOff: number): void;

  // ---- fused cell kernels: one time step for B rows (see src/cells/*.ts for the equations) ----

  /**
   * LSTM step. `gates` [B,4H] holds the pre-activations (x W_ih^T + b_ih + b_hh + h W_hh^T) in
   * PyTorch order i,f,g,o; on return it holds the activations σ(i),σ(f),tanh(g),σ(o).
   * c = f*cPrev + i*g; h = o*tanh(c).
   */
  lstmCellForward(B: number, H: number, gates: Buf, gOff: number, cPrev: Buf, cpOff: number,
    c: Buf, cOff: number, h: Buf, hOff: number): void;
  /**
   * LSTM step backward. Inputs: activated gates [B,4H], cPrev, c [B,H], dh [B,H] (total gradient into h_t),
   * dc [B,H] (gradient into c_t from step t+1; updated in place to the gradient into c_{t-1}).
   * Output: dgates [B,4H], the gradient w.r.t. the gate pre-activations.
   */
  lstmCellBackward(B: number, H: number, gates: Buf, gOff: number, cPrev: Buf, cpOff: number,
    c: Buf, cOff: number, dh: Buf, dhOff: number, dc: Buf, dcOff: number, dgates: Buf, dgOff: number): void;

  /**
   * GRU step (PyTorch): xp [B,3H] = x W_ih^T + b_ih, hp [B,3H] = hPrev W_hh^T + b_hh, order r,z,n.
   * r = σ(xr+hr), z = σ(xz+hz), n = tanh(xn + r*hn), h = (1-z)*n + z*hPrev.
   * Saves r, z, n into `act` [B,3H] for the backward (hp's n part is kept as it is in hp).
   */
  gruCellForward(B: number, H: number, xp: Buf, xpOff: number, hp: Buf, hpOff: number,
    hPrev: Buf, hpvOff: number, act: Buf, aOff: number, h: Buf, hOff: number): void;
  /**
   * GRU step backward. dh [B,H] is the total gradient into h_t. Writes dxp [B,3H] (gradient w.r.t.
   * xp), dhp [B,3H] (w.r.t. hp), and dhPrev [B,H] = dh*z (the direct part; the caller adds dhp · W_hh).
   */
  gruCellBackward(B: number, H: number, act: Buf, aOff: number, hp: Buf, hpOff: number,
    hPrev: Buf, hpvOff: number, dh: Buf, dhOff: number,
    dxp: Buf, dxpOff: number, dhp: Buf, dhpOff: number, dhPrev: Buf, dhPrevOff: number): void;

  /** Plain RNN step: h = f(a) in place on a [B,H] (a holds x W_ih^T + b_ih + h W_hh^T + b_hh). */
  rnnCellForward(act: Activation, B: number, H: number, a: Buf, aOff: number): void;
  /** Plain RNN backward: da = dh * f'(a) computed from h = f(a). */
  rnnCellBackward(act: Activation, B: number, H: number, h: Buf, hOff: number, dh: Buf, dhOff: number,
    da: Buf, daOff: number): void;

  // ---- around the cells ----

  /** out[r,:] = table[ids[r], :] for r < n. */
  embeddingForward(n: number, dim: number, ids: Int32Array, table: Buf, out: Buf, outOff: number): void;
  /** dTable[ids[r], :] += dOut[r, :]. */
  embeddingBackward(n: number, dim: number, ids: Int32Array, dOut: Buf, dOutOff: number, dTable: Buf): void;

  /**
   * Fused, numerically stable softmax cross-entropy over rows of logits [n, V].
   * Returns the summed loss (natural log) over the rows whose target is >= 0; rows with target < 0 are
   * ignored (padding). When dLogits is given, writes (softmax - onehot) * scale into it (0 for ignored rows).
   */
  softmaxCrossEntropy(n: number, V: number, logits: Buf, lOff: number, targets: Int32Array,
    dLogits: Buf | null, dOff: number, scale: number): number;

  /** y[i] = a[i] * b[i]. */
  mul(n: number, a: Buf, aOff: number, b: Buf, bOff: number, y: Buf, yOff: number): void;
  /** y[i] += x[i]. */
  addTo(n: number, x: Buf, xOff: number, y: Buf, yOff: number): void;
  /** Optional: y[i] = a[i] + b[i] (one kernel where copy + addTo would be two: device backends). */
  add?(n: number, a: Buf, aOff: number, b: Buf, bOff: number, y: Buf, yOff: number): void;
  /** x[i] *= s. */
  scale(n: number, s: number, x: Buf, xOff: number): void;
  /** sum of x[i]^2 in double precision. */
  sumSquares(n: number, x: Buf, xOff: number): number;
  fill(n: number, v: number, x: Buf, xOff: number): void;
  copy(n: number, x: Buf, xOff: number, y: Buf, yOff: number): void;
  /** Y[r*ldy + j] = X[r*ldx + j] for r < rows, j < n (strided copy: concatenation, gathers). */
  copy2d?(rows: number, n: number, X: Buf, xOff: number, ldx: number, Y: Buf, yOff: number, ldy: number): void;

  // ---- batch-1 inference (optional, all or none): one token at a time through a Step1Spec ----

  /**
   * Compile a Step1Spec into a plan: its own copy of the weights (as step1Load) and a zero state. Layer 0's
   * input projection becomes a table T0 [V, G*H] = embedding · W_ih0^T + b_ih0 + b_hh0 (GRU: the n part gets
   * b_in0 only, b_hn0 stays inside r * (W_hn h + b_hn)), so a step looks up a row instead of multiplying.
   */
  step1Create?(spec: Step1Spec): Step1Plan;
  /** Take a new snapshot of the spec's weights (after they changed: later writes do not reach the plan). */
  step1Load?(plan: Step1Plan): void;
  /**
   * One step for token `id` (0 <= id < V): every layer's cell from the plan's state (updated), then the
   * decoder. Returns the logits [V] at offset 0 of a buffer owned by the plan, valid until the next call.
   * Equals CharLM.forward(id, T=1, B=1) to float32 rounding.
   */
  step1Run?(plan: Step1Plan, id: number): Buf;
  /**
   * The plan's state as [L, H] (h, and c for LSTM): written into h/c (out = true) or read from them
   * (out = false; null = zero).
   */
  step1State?(plan: Step1Plan, h: Buf | null, c: Buf | null, out: boolean): void;
  /** Release a plan. */
  step1Free?(plan: Step1Plan): void;

  /**
   * One Adam step (PyTorch semantics, bias-corrected, L2 weight decay added to the gradient):
   * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps).
   * `step` is t, counted from 1.
   */
  adam(n: number, p: Buf, g: Buf, m: Buf, v: Buf, lr: number, b1: number, b2: number, eps: number,
    weightDecay: number, step: number): void;
  /** p -= lr * (g + wd p), with momentum buffer when momentum > 0 (PyTorch SGD). */
  sgd(n: number, p: Buf, g: Buf, mom: Buf | null, lr: number, momentum: number, weightDecay: number): void;

  /** LSTM with a normalized cell state ĉ: h = o * tanh(ĉ) for B rows (o from the activated gates [B,4H]). */
  lstmOutput?(B: number, H: number, gates: Buf, gOff: number, cn: Buf, cnOff: number, h: Buf, hOff: number): void;
  /** Its backward: dĉ = dh o (1 - tanh²ĉ), do_pre = dh tanh(ĉ) o (1 - o), both [B, H]. */
  lstmOutputBackward?(B: number, H: number, gates: Buf, gOff: number, cn: Buf, cnOff: number, dh: Buf, dhOff: number,
    dcn: Buf, dcnOff: number, dO: Buf, dOOff: number): void;

  // ---- normalization (optional: src/norm/norm.ts falls back to the reference loops of js.ts) ----

  /**
   * Layer norm over rows of n: x̂ = (X - mean_row) / sqrt(var_row + eps), Y = γ x̂ + β (γ, β at gbOff).
   * Saves x̂ [rows, n] and rstd [rows] for the backward. Y may be X.
   */
  layerNormForward?(rows: number, n: number, X: Buf, xOff: number, gamma: Buf, beta: Buf, gbOff: number,
    Y: Buf, yOff: number, xhat: Buf, xhOff: number, rstd: Buf, rOff: number, eps: number): void;
  /** dX = rstd (dY γ - mean(dY γ) - x̂ mean(dY γ x̂)) per row; dγ += Σ dY x̂, dβ += Σ dY. dX may be dY. */
  layerNormBackward?(rows: number, n: number, dY: Buf, dyOff: number, xhat: Buf, xhOff: number, rstd: Buf, rOff: number,
    gamma: Buf, gbOff: number, dGamma: Buf, dBeta: Buf, dX: Buf, dxOff: number): void;
  /** Per column of X [rows, n]: mean and biased variance over the rows with mask[r] != 0 (all when null). */
  columnStats?(rows: number, n: number, X: Buf, xOff: number, mask: Uint8Array | null, mean: Buf, variance: Buf): void;
  /** Batch norm with given statistics: x̂ = (X - mean) / sqrt(var + eps) per column, Y = γ x̂ + β; saves x̂, rstd [n]. */
  normalizeColumns?(rows: number, n: number, X: Buf, xOff: number, mean: Buf, variance: Buf, eps: number,
    gamma: Buf, beta: Buf, gbOff: number, Y: Buf, yOff: number, xhat: Buf, xhOff: number, rstd: Buf, rOff: number): void;
  /**
   * Batch norm backward over the rows with mask[r] != 0 (masked rows get dX = 0 and add nothing to dγ, dβ).
   * training: the statistics were the batch's (full backward); else constants (dX = dY γ rstd).
   */
  batchNormBackward?(rows: number, n: number, dY: Buf, dyOff: number, xhat: Buf, xhOff: number, rstd: Buf, rOff: number,
    gamma: Buf, gbOff: number, mask: Uint8Array | null, training: boolean, dGamma: Buf, dBeta: Buf, dX: Buf, dxOff: number): void;

  // ---- deferred backends (webgpu): kernels are recorded and run later on a device ----
  //
  // On such a backend a Buf is a host array paired with a device buffer. Host writes made before a buffer's
  // first use are uploaded by themselves; later host writes must be announced with hostWrote, and host
  // reads must wait for syncHost. softmaxCrossEntropy returns NaN: its loss is read with takeLoss.
  // On the other backends these are absent (everything is immediate) and the helpers in
  // src/backend/sync.ts do nothing.

  /** True when kernels run later (see above). */
  readonly deferred?: boolean;
  /** The host wrote into buf after the device used it: upload before its next use. */
  hostWrote?(buf: Buf): void;
  /** Bring the device's contents of bufs (default: all) into their host arrays. */
  syncHost?(bufs?: Buf[]): Promise<void>;
  /** The summed losses of the softmaxCrossEntropy calls since the last takeLoss. */
  takeLoss?(): Promise<number>;
  /** Global gradient-norm clipping without reading back (returns NaN when the norm stays on the device). */
  clipGradNorm?(grads: Buf[], sizes: number[], maxNorm: number): number;
  /** Weight norm per row of [rows, cols]: norms[i] = ||v_i||, w_i = g_i v_i / norms[i]. */
  weightNormForward?(rows: number, cols: number, g: Buf, v: Buf, w: Buf, norms: Buf): void;
  /** Its backward: dg_i += dw_i·v_i / n_i, dv_i += (g_i/n_i) dw_i - (g_i dg_i / n_i²) v_i, then dw = 0. */
  weightNormBackward?(rows: number, cols: number, g: Buf, v: Buf, norms: Buf, dw: Buf, dg: Buf, dv: Buf): void;
  /**
   * Batch-1 sampling on the device (deferred backends): the prime, then uniforms.length tokens drawn from
   * softmax(logits / temperature) with one uniform each, as sample.ts draws; the final state [L, H] into
   * hOut / cOut. One read per call.
   */
  sampleOnDevice?(spec: Step1Spec, prime: Int32Array, uniforms: Float32Array, temperature: number,
    hOut: Buf | null, cOut: Buf | null): Promise<Int32Array>;
  /** pop[popOff + j] = keep * pop[popOff + j] + mom * stat[j] for j < n (batch norm's population statistics). */
  emaUpdate?(n: number, stat: Buf, pop: Buf, popOff: number, keep: number, mom: number): void;

  /** Release workers and memory. */
  dispose(): void;
}
