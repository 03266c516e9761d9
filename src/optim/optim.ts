// Optimizers (PyTorch semantics) and global gradient-norm clipping.

import type { Backend, Buf } from '../backend/backend.js';
import type { Param } from '../layers/param.js';

export interface Optimizer {
  lr: number;
  step(): void;
  zeroGrad(): void;
  setStep(t: number): void;
  /** Step count, and per-parameter state buffers by slot name, aligned with the parameter list. */
  state(): OptimizerState;
}

export interface OptimizerState {
  step: number;
  slots: Record<string, Buf[]>;
}

export interface AdamOptions { lr?: number; betas?: [number, number]; eps?: number; weightDecay?: number }

export class Adam implements Optimizer {
  lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  t = 0;
  private m: Buf[];
  private v: Buf[];

  constructor(private be: Backend, readonly params: Param[], opts: AdamOptions = {}) {
    this.lr = opts.lr ?? 1e-3;
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    this.m = params.map((p) => be.alloc(p.size));
    this.v = params.map((p) => be.alloc(p.size));
  }

  step(): void {
    this.t++;
    this.params.forEach((p, i) => this.be.adam(p.size, p.data, p.grad, this.m[i], this.v[i], this.lr,
      this.betas[0], this.betas[1], this.eps, this.weightDecay, this.t));
  }

  zeroGrad(): void {
    for (const p of this.params) this.be.fill(p.size, 0, p.grad, 0);
  }

  state(): OptimizerState {
    return { step: this.t, slots: { exp_avg: this.m, exp_avg_sq: this.v } };
  }

  setStep(t: number): void {
    this.t = t;
  }
}

export interface SgdOptions { lr?: number; momentum?: number; weightDecay?: number }

export class SGD implements Optimizer {
  lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  t = 0;
  private mom: (Buf | null)[];

  constructor(private be: Backend, readonly params: Param[], opts: SgdOptions = {}) {
    this.lr = opts.lr ?? 0.1;
    this.momentum = opts.momentum ?? 0;
    this.weightDecay = opts.weightDecay ?? 0;
    this.mom = params.map((p) => (this.momentum > 0 ? be.alloc(p.size) : null));
  }

  step(): void {
    this.t++;
    this.params.forEach((p, i) => this.be.sgd(p.size, p.data, p.grad, this.mom[i], this.lr, this.momentum, this.weightDecay));
  }

  zeroGrad(): void {
    for (const p of this.params) this.be.fill(p.size, 0, p.grad, 0);
  }

  state(): OptimizerState {
    return { step: this.t, slots: this.momentum > 0 ? { momentum_buffer: this.mom as Buf[] } : {} };
  }

  setStep(t: number): void {
    this.t = t;
  }
}

/**
 * Scale all gradients so that their global L2 norm is at most maxNorm (torch.nn.utils.clip_grad_norm_).
 * Returns the norm before clipping.
 */
export function clipGradNorm(be: Backend, params: Param[], maxNorm: number): number {
  if (be.clipGradNorm) return be.clipGradNorm(params.map((p) => p.grad), params.map((p) => p.size), maxNorm);
  let sq = 0;
  for (const p of params) sq += be.sumSquares(p.size, p.grad, 0);
  const norm = Math.sqrt(sq);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) for (const p of params) be.scale(p.size, coef, p.grad, 0);
  return norm;
}
