// Normalization inside recurrent cells (the lecture's third part):
//
//   layer norm (Ba et al. 2016):  y = γ ⊙ (x - mean_row(x)) / sqrt(var_row(x) + ε) + β   per row, no batch dependence
//   recurrent batch norm (Cooijmans et al. 2016):
//       h_t = f(BN(W_h h_{t-1}; β_h, γ_h) + BN(W_x x_t; β_x, γ_x) + b),  LSTM: h_t = o ⊙ tanh(BN(c_t; β_c, γ_c))
//     with separate mean/variance per time step (statistics over the batch rows of that step), population
//     statistics per step for inference (steps past the longest training length reuse the last), γ
//     initialised to 0.1. Rows whose sequence has ended (a mask) are left out of the statistics.
//     γ/β are shared by all steps, or one set per step (`perStepAffine`), the slide's "one cell, many steps:
//     which weights?".
//
// A GateNorm holds the γ/β of one layer direction for the three places a cell normalizes ('x': the input
// projection, 'h': the hidden projection, 'c': the LSTM cell state), the saved x̂ and 1/σ for the backward,
// and, for batch norm, the population statistics. The kernels are the backend's (layerNormForward, ...);
// a backend without them gets the reference loops of js.ts, which work on any backend's typed arrays.

import type { Backend, Buf } from '../backend/backend.js';
import { JsBackend } from '../backend/js.js';
import { Param } from '../layers/param.js';

const reference = new JsBackend('float32');

export type NormKind = 'none' | 'layer' | 'batch' | 'weight';
export type NormSite = 'x' | 'h' | 'c';

export interface NormOptions {
  kind: NormKind;
  eps?: number;
  /** Batch norm: momentum of the population statistics (PyTorch's convention), default 0.1. */
  momentum?: number;
  /** Batch norm: initial γ, default 0.1 (Cooijmans et al.); layer norm uses 1. */
  gammaInit?: number;
  /** Batch norm: one γ/β per time step instead of shared (needs maxSteps). */
  perStepAffine?: boolean;
  /** Batch norm: steps with their own population statistics (later steps reuse the last), default 1024. */
  maxSteps?: number;
}

interface Site {
  n: number;
  gamma: Param;
  beta: Param;
  /** Saved normalized values [T, B, n] and inverse std: per row [T*B] (layer) or per step and feature [T, n] (batch). */
  xhat: Buf;
  rstd: Buf;
  /** Batch norm population statistics [maxSteps, n], and how many steps have statistics. */
  popMean: Buf | null;
  popVar: Buf | null;
}

export class GateNorm {
  readonly kind: 'layer' | 'batch';
  readonly eps: number;
  readonly momentum: number;
  readonly perStep: boolean;
  readonly maxSteps: number;
  private sites = new Map<NormSite, Site>();
  /** Steps seen in training, for the population statistics of batch norm. */
  seenSteps = 0;
  private cap = 0;
  private B = 0;
  training = true;
  /** Valid rows per step: mask[t*B + b] = 1 while sequence b is running (batch statistics only). */
  mask: Uint8Array | null = null;
  /** The backend's normalization kernels, or the reference loops (they work on any backend's buffers). */
  private kernels: Backend;
  /** Batch statistics of one step [n_max]. */
  private mean: Buf;
  private var: Buf;

  constructor(private be: Backend, opts: NormOptions, sites: [NormSite, number][], suffix: string) {
    if (opts.kind !== 'layer' && opts.kind !== 'batch') throw new Error(`GateNorm: kind must be layer or batch, got ${opts.kind}`);
    this.kind = opts.kind;
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    this.perStep = this.kind === 'batch' && (opts.perStepAffine ?? false);
    this.maxSteps = opts.maxSteps ?? 1024;
    this.kernels = be.layerNormForward && be.batchNormBackward ? be : reference;
    const nMax = Math.max(...sites.map(([, n]) => n));
    this.mean = be.alloc(nMax);
    this.var = be.alloc(nMax);
    const g0 = opts.gammaInit ?? (this.kind === 'batch' ? 0.1 : 1);
    for (const [site, n] of sites) {
      const rows = this.perStep ? this.maxSteps : 1;
      const gamma = new Param(be, `norm_${site === 'x' ? 'ih' : site === 'h' ? 'hh' : 'c'}_weight_${suffix}`, this.perStep ? [rows, n] : [n]);
      const beta = new Param(be, `norm_${site === 'x' ? 'ih' : site === 'h' ? 'hh' : 'c'}_bias_${suffix}`, this.perStep ? [rows, n] : [n]);
      gamma.data.fill(g0);
      this.sites.set(site, {
        n, gamma, beta, xhat: be.alloc(0), rstd: be.alloc(0),
        popMean: this.kind === 'batch' ? be.alloc(this.maxSteps * n) : null,
        popVar: this.kind === 'batch' ? be.alloc(this.maxSteps * n).fill(1) : null,
      });
    }
  }

  parameters(): Param[] {
    return [...this.sites.values()].flatMap((s) => [s.gamma, s.beta]);
  }

  has(site: NormSite): boolean {
    return this.sites.has(site);
  }

  /** Room for T steps of B rows. */
  ensure(T: number, B: number): void {
    if (T * B <= this.cap && B === this.B) return;
    for (const s of this.sites.values()) {
      this.be.free(s.xhat); this.be.free(s.rstd);
      s.xhat = this.be.alloc(T * B * s.n);
      s.rstd = this.be.alloc(this.kind === 'layer' ? T * B : T * s.n);
    }
    this.cap = T * B; this.B = B;
  }

  /** Y[t] = N(X[t]) for the B rows of step t (X may be Y). */
  forward(site: NormSite, t: number, B: number, X: Buf, xOff: number, Y: Buf, yOff: number): void {
    const s = this.sites.get(site)!, n = s.n, k = this.kernels, a = this.perStep ? Math.min(t, this.maxSteps - 1) * n : 0;
    if (this.kind === 'layer') {
      k.layerNormForward!(B, n, X, xOff, s.gamma.data, s.beta.data, a, Y, yOff, s.xhat, t * B * n, s.rstd, t * B, this.eps);
      return;
    }
    // batch norm: statistics of this step over its valid rows, per feature
    const m = this.mask ? this.mask.subarray(t * B, t * B + B) : null;
    if (this.training) {
      k.columnStats!(B, n, X, xOff, m, this.mean, this.var);
      let count = 0;
      for (let r = 0; r < B; r++) if (!m || m[r]) count++;
      if (t < this.maxSteps && count > 0) {
        const pt = t * n, mom = this.momentum, unb = count > 1 ? count / (count - 1) : 1;
        if (this.be.emaUpdate) { // on the device (the statistics never come back to the host)
          this.be.emaUpdate(n, this.mean, s.popMean!, pt, 1 - mom, mom);
          this.be.emaUpdate(n, this.var, s.popVar!, pt, 1 - mom, mom * unb);
        } else for (let j = 0; j < n; j++) {
          s.popMean![pt + j] = (1 - mom) * s.popMean![pt + j] + mom * this.mean[j];
          s.popVar![pt + j] = (1 - mom) * s.popVar![pt + j] + mom * this.var[j] * unb;
        }
      }
      this.seenSteps = Math.max(this.seenSteps, Math.min(t + 1, this.maxSteps));
    } else {
      const q = Math.min(t, Math.max(this.seenSteps, 1) - 1, this.maxSteps - 1) * n;
      this.be.copy(n, s.popMean!, q, this.mean, 0);
      this.be.copy(n, s.popVar!, q, this.var, 0);
    }
    k.normalizeColumns!(B, n, X, xOff, this.mean, this.var, this.eps, s.gamma.data, s.beta.data, a, Y, yOff, s.xhat, t * B * n, s.rstd, t * n);
  }

  /** dX[t] = ∂/∂X of the step-t normalization given dY (dX may be dY); accumulates dγ, dβ. */
  backward(site: NormSite, t: number, B: number, dY: Buf, dyOff: number, dX: Buf, dxOff: number): void {
    const s = this.sites.get(site)!, n = s.n, k = this.kernels, a = this.perStep ? Math.min(t, this.maxSteps - 1) * n : 0;
    if (this.kind === 'layer') {
      k.layerNormBackward!(B, n, dY, dyOff, s.xhat, t * B * n, s.rstd, t * B, s.gamma.data, a, s.gamma.grad, s.beta.grad, dX, dxOff);
      return;
    }
    const m = this.mask ? this.mask.subarray(t * B, t * B + B) : null;
    k.batchNormBackward!(B, n, dY, dyOff, s.xhat, t * B * n, s.rstd, t * n, s.gamma.data, a, m, this.training, s.gamma.grad, s.beta.grad, dX, dxOff);
  }

  /**
   * Batch norm's population statistics, to save with a model (like PyTorch's running_mean / running_var
   * buffers): norm_{ih,hh,c}_running_{mean,var}_<suffix> [maxSteps, n], and norm_steps_<suffix> [1], the
   * number of steps that have statistics. Empty for layer norm.
   */
  buffers(suffix: string): Map<string, { shape: number[]; data: Float32Array | Float64Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array | Float64Array }>();
    if (this.kind !== 'batch') return out;
    for (const [k, s] of this.sites) {
      const nm = k === 'x' ? 'ih' : k === 'h' ? 'hh' : 'c';
      out.set(`norm_${nm}_running_mean_${suffix}`, { shape: [this.maxSteps, s.n], data: s.popMean! });
      out.set(`norm_${nm}_running_var_${suffix}`, { shape: [this.maxSteps, s.n], data: s.popVar! });
    }
    const steps = new Float64Array([this.seenSteps]);
    out.set(`norm_steps_${suffix}`, { shape: [1], data: steps });
    return out;
  }

  /** Restore buffers saved by buffers(). */
  loadBuffers(suffix: string, get: (name: string) => ArrayLike<number> | undefined): void {
    for (const [name, b] of this.buffers(suffix)) {
      const v = get(name);
      if (!v) throw new Error(`missing batch-norm statistics '${name}'`);
      if (v.length !== b.data.length) throw new Error(`batch-norm statistics '${name}' have ${v.length} values, expected ${b.data.length}`);
      if (name.startsWith('norm_steps_')) this.seenSteps = Math.max(0, Math.min(this.maxSteps, Math.floor(v[0])));
      else { b.data.set(v); this.be.hostWrote?.(b.data as Buf); }
    }
  }
}
