// Linear (fully connected) layer, PyTorch's nn.Linear: y = x W^T + b, W [out, in].

import type { Backend, Buf } from '../backend/backend.js';
import type { Rng } from '../util/rng.js';
import { Param, type HasParams } from './param.js';

export class Linear implements HasParams {
  readonly weight: Param;
  readonly bias: Param | null;
  private dxBuf: Buf;
  private cap = 0;

  constructor(readonly be: Backend, readonly inFeatures: number, readonly outFeatures: number, rng: Rng, bias = true) {
    this.weight = new Param(be, 'weight', [outFeatures, inFeatures]);
    this.bias = bias ? new Param(be, 'bias', [outFeatures]) : null;
    const bound = 1 / Math.sqrt(inFeatures); // PyTorch's default init bound
    this.weight.uniform(rng, -bound, bound);
    this.bias?.uniform(rng, -bound, bound);
    this.dxBuf = be.alloc(0);
  }

  parameters(): Param[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  /** y[n, out] = x[n, in] W^T + b. */
  forward(n: number, x: Buf, xOff: number, y: Buf, yOff: number): void {
    const { inFeatures: I, outFeatures: O } = this;
    this.be.gemm(false, true, n, O, I, x, xOff, I, this.weight.data, 0, I, 0, y, yOff, O);
    if (this.bias) this.be.addRowVector(n, O, y, yOff, this.bias.data, 0, y, yOff);
  }

  /** Accumulates dW, db; returns dx [n, in] (a buffer owned by the layer) when needDx. */
  backward(n: number, x: Buf, xOff: number, dy: Buf, dyOff: number, needDx: boolean): Buf | null {
    const { inFeatures: I, outFeatures: O } = this;
    this.be.gemm(true, false, O, I, n, dy, dyOff, O, x, xOff, I, 1, this.weight.grad, 0, I);
    if (this.bias) this.be.sumRows(n, O, dy, dyOff, this.bias.grad, 0);
    if (!needDx) return null;
    if (this.cap < n * I) { this.be.free(this.dxBuf); this.dxBuf = this.be.alloc(n * I); this.cap = n * I; }
    this.be.gemm(false, false, n, I, O, dy, dyOff, O, this.weight.data, 0, I, 0, this.dxBuf, 0, I);
    return this.dxBuf;
  }
}
