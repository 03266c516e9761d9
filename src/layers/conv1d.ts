// Temporal convolution, PyTorch's nn.Conv1d(in_channels, out_channels, kernel_size, dilation, padding):
// parameters `weight` [out, in, k] and `bias` [out], PyTorch's default init U(-1/sqrt(in*k), 1/sqrt(in*k)).
//
// Sequences are time-major [T, B, C] like the recurrent layers (PyTorch's Conv1d is [B, C, T]; the maths is
// the same):  y[t] = bias + sum_j W[:, :, j] x[t - padLeft + j*dilation]   (x outside [0, T) is zero)
// Output length Tout = T + padLeft + padRight - dilation*(k-1).
// Padding: a number p (both sides, PyTorch's `padding=p`), 'causal' (left only, (k-1)*dilation: y[t] sees
// x[<= t], for language models) or 'same' ((k-1)*dilation split evenly; must be even).
//
// One gemm per tap over all time steps at once: since the layout is time-major, the rows of the steps a tap
// reaches are contiguous. The taps' [out, in] slices are kept in a [k, out, in] copy of the weight.

import { immediateOnly } from '../backend/sync.js';
import type { Backend, Buf } from '../backend/backend.js';
import type { Rng } from '../util/rng.js';
import { Param, type HasParams } from './param.js';

export type Conv1dPadding = number | 'causal' | 'same';

export interface Conv1dOptions {
  inChannels: number;
  outChannels: number;
  kernelSize: number;
  dilation?: number;
  padding?: Conv1dPadding;
  bias?: boolean;
}

export class Conv1d implements HasParams {
  readonly weight: Param;
  readonly bias: Param | null;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: number;
  readonly dilation: number;
  readonly padLeft: number;
  readonly padRight: number;
  /** The weight as [k, out, in] (tap-major), refreshed at every forward. */
  private wr: Buf;
  private dwr: Buf;
  private dx: Buf;
  private dxCap = 0;
  private x: Buf | null = null;
  private xOff = 0;
  private T = 0;
  private B = 0;

  constructor(readonly be: Backend, opts: Conv1dOptions, rng: Rng) {
    immediateOnly(be, 'Conv1d');
    const { inChannels: I, outChannels: O, kernelSize: K } = opts;
    const d = opts.dilation ?? 1;
    for (const [k, v] of [['inChannels', I], ['outChannels', O], ['kernelSize', K], ['dilation', d]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`Conv1d: ${k} must be a positive integer, got ${v}`);
    }
    this.inChannels = I; this.outChannels = O; this.kernelSize = K; this.dilation = d;
    const span = d * (K - 1), pad = opts.padding ?? 0;
    if (pad === 'causal') { this.padLeft = span; this.padRight = 0; }
    else if (pad === 'same') {
      if (span % 2) throw new Error(`Conv1d: padding 'same' needs an even dilation*(kernelSize-1), got ${span}`);
      this.padLeft = this.padRight = span / 2;
    } else {
      if (!Number.isInteger(pad) || pad < 0) throw new Error(`Conv1d: padding must be 'causal', 'same' or an integer >= 0, got ${pad}`);
      this.padLeft = this.padRight = pad;
    }
    this.weight = new Param(be, 'weight', [O, I, K]);
    this.bias = opts.bias === false ? null : new Param(be, 'bias', [O]);
    const bound = 1 / Math.sqrt(I * K);
    this.weight.uniform(rng, -bound, bound);
    this.bias?.uniform(rng, -bound, bound);
    this.wr = be.alloc(K * O * I);
    this.dwr = be.alloc(K * O * I);
    this.dx = be.alloc(0);
  }

  parameters(): Param[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  /** Output length for an input of T steps. */
  outLength(T: number): number {
    return T + this.padLeft + this.padRight - this.dilation * (this.kernelSize - 1);
  }

  /** Rows [t0, t1) of the output that tap j reaches, and the input shift s (input step = t + s). */
  private tapRange(j: number, T: number, Tout: number): [number, number, number] {
    const s = j * this.dilation - this.padLeft;
    return [Math.max(0, -s), Math.min(Tout, T - s), s];
  }

  /** x [T, B, in] at xOff (kept by reference for the backward) -> y [Tout, B, out] at yOff. */
  forward(x: Buf, xOff: number, T: number, B: number, y: Buf, yOff: number): void {
    const { be, inChannels: I, outChannels: O, kernelSize: K } = this;
    const Tout = this.outLength(T);
    if (Tout < 1) throw new Error(`Conv1d: input of ${T} steps is shorter than the kernel's span ${this.dilation * (K - 1) + 1} (with padding ${this.padLeft}+${this.padRight})`);
    if (x.length - xOff < T * B * I) throw new Error(`Conv1d: input has ${x.length - xOff} values, expected [T=${T}, B=${B}, in=${I}]`);
    this.x = x; this.xOff = xOff; this.T = T; this.B = B;
    const w = this.weight.data, wr = this.wr;
    for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) for (let j = 0; j < K; j++) wr[(j * O + o) * I + i] = w[(o * I + i) * K + j];
    be.fill(Tout * B * O, 0, y, yOff);
    if (this.bias) be.addRowVector(Tout * B, O, y, yOff, this.bias.data, 0, y, yOff);
    for (let j = 0; j < K; j++) {
      const [t0, t1, s] = this.tapRange(j, T, Tout);
      if (t1 <= t0) continue;
      be.gemm(false, true, (t1 - t0) * B, O, I, x, xOff + (t0 + s) * B * I, I, wr, j * O * I, I, 1, y, yOff + t0 * B * O, O);
    }
  }

  /**
   * dy [Tout, B, out]: accumulates weight.grad and bias.grad; returns dx [T, B, in] (owned by the layer)
   * when needDx.
   */
  backward(dy: Buf, dyOff: number, needDx: boolean): Buf | null {
    if (!this.x) throw new Error('Conv1d: backward called before forward');
    const { be, inChannels: I, outChannels: O, kernelSize: K, T, B, x, xOff } = this;
    const Tout = this.outLength(T);
    if (this.bias) be.sumRows(Tout * B, O, dy, dyOff, this.bias.grad, 0);
    if (needDx) {
      if (this.dxCap < T * B * I) { be.free(this.dx); this.dx = be.alloc(T * B * I); this.dxCap = T * B * I; }
      be.fill(T * B * I, 0, this.dx, 0);
    }
    for (let j = 0; j < K; j++) {
      const [t0, t1, s] = this.tapRange(j, T, Tout);
      if (t1 <= t0) { be.fill(O * I, 0, this.dwr, j * O * I); continue; }
      const rows = (t1 - t0) * B;
      be.gemm(true, false, O, I, rows, dy, dyOff + t0 * B * O, O, x, xOff + (t0 + s) * B * I, I, 0, this.dwr, j * O * I, I);
      if (needDx) be.gemm(false, false, rows, I, O, dy, dyOff + t0 * B * O, O, this.wr, j * O * I, I, 1, this.dx, (t0 + s) * B * I, I);
    }
    const g = this.weight.grad, dwr = this.dwr;
    for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) for (let j = 0; j < K; j++) g[(o * I + i) * K + j] += dwr[(j * O + o) * I + i];
    return needDx ? this.dx : null;
  }
}
