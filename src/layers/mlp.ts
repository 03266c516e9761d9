// Multi-layer perceptron: Linear -> activation -> ... -> Linear (PyTorch nn.Sequential naming:
// `0.weight`, `0.bias`, `2.weight`, ... — the activations take the odd indices, as in nn.Sequential).
// Activations use the backend's plain-RNN step kernels (h = f(a) in place; da = dh * f'(a) from h).

import type { Activation, Backend, Buf } from '../backend/backend.js';
import type { Rng } from '../util/rng.js';
import { Linear } from './linear.js';
import { Param, type HasParams } from './param.js';

export class MLP implements HasParams {
  readonly layers: Linear[];
  readonly params: Map<string, Param>;
  /** Activations of each layer [n, size_k] (the input excluded). */
  private acts: Buf[] = [];
  private grads: Buf[] = [];
  private cap = 0;
  private n = 0;
  private x: Buf | null = null;
  private xOff = 0;

  /** sizes = [in, hidden..., out]; the activation follows every layer but the last. */
  constructor(readonly be: Backend, readonly sizes: number[], readonly activation: Activation, rng: Rng) {
    if (sizes.length < 2) throw new Error(`MLP: needs at least [in, out] sizes, got [${sizes}]`);
    this.layers = [];
    this.params = new Map();
    for (let k = 0; k + 1 < sizes.length; k++) {
      const l = new Linear(be, sizes[k], sizes[k + 1], rng);
      this.layers.push(l);
      for (const p of l.parameters()) this.params.set(`${2 * k}.${p.name}`, p);
    }
  }

  parameters(): Param[] {
    return [...this.params.values()];
  }

  get outFeatures(): number {
    return this.sizes[this.sizes.length - 1];
  }

  private ensure(n: number): void {
    this.n = n;
    if (n <= this.cap) return;
    for (const b of [...this.acts, ...this.grads]) this.be.free(b);
    this.acts = this.sizes.slice(1).map((s) => this.be.alloc(n * s));
    this.grads = this.sizes.slice(1).map((s) => this.be.alloc(n * s));
    this.cap = n;
  }

  /** x [n, in] -> returns y [n, out] (owned by the MLP, valid until the next forward). */
  forward(n: number, x: Buf, xOff: number): Buf {
    this.ensure(n);
    this.x = x; this.xOff = xOff;
    let inp = x, off = xOff;
    this.layers.forEach((l, k) => {
      l.forward(n, inp, off, this.acts[k], 0);
      if (k + 1 < this.layers.length) this.be.rnnCellForward(this.activation, n, l.outFeatures, this.acts[k], 0);
      inp = this.acts[k]; off = 0;
    });
    return this.acts[this.acts.length - 1];
  }

  /** dy [n, out] -> accumulates parameter gradients; returns dx [n, in] when needDx. */
  backward(dy: Buf, dyOff: number, needDx: boolean): Buf | null {
    const { n } = this;
    let g = dy, gOff = dyOff;
    for (let k = this.layers.length - 1; k >= 0; k--) {
      const l = this.layers[k];
      if (k + 1 < this.layers.length) {
        this.be.rnnCellBackward(this.activation, n, l.outFeatures, this.acts[k], 0, g, gOff, this.grads[k], 0);
        g = this.grads[k]; gOff = 0;
      }
      const inp = k === 0 ? this.x! : this.acts[k - 1], off = k === 0 ? this.xOff : 0;
      const dx = l.backward(n, inp, off, g, gOff, k > 0 || needDx);
      if (k > 0) { g = dx!; gOff = 0; } // the next activation backward reads it before layer k runs again
      else if (needDx) return dx;
    }
    return null;
  }
}
