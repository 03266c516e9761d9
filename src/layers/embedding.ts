// Embedding by id, PyTorch's nn.Embedding: a table [num, dim], row ids -> vectors.

import type { Backend, Buf } from '../backend/backend.js';
import type { Rng } from '../util/rng.js';
import { Param, type HasParams } from './param.js';

export class Embedding implements HasParams {
  readonly weight: Param;

  constructor(readonly be: Backend, readonly num: number, readonly dim: number, rng: Rng) {
    this.weight = new Param(be, 'weight', [num, dim]);
    for (let i = 0; i < this.weight.size; i++) this.weight.data[i] = rng.normal(); // PyTorch: N(0, 1)
  }

  parameters(): Param[] {
    return [this.weight];
  }

  private check(n: number, ids: Int32Array): void {
    for (let r = 0; r < n; r++) {
      const id = ids[r];
      if (!(id >= 0 && id < this.num)) throw new Error(`Embedding: id ${id} at position ${r} is outside [0, ${this.num})`);
    }
  }

  /** out[n, dim] = weight[ids] */
  forward(n: number, ids: Int32Array, out: Buf, outOff: number): void {
    this.check(n, ids);
    this.be.embeddingForward(n, this.dim, ids, this.weight.data, out, outOff);
  }

  backward(n: number, ids: Int32Array, dOut: Buf, dOutOff: number): void {
    this.be.embeddingBackward(n, this.dim, ids, dOut, dOutOff, this.weight.grad);
  }
}
