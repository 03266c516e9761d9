// Weight normalization (Salimans & Kingma 2016), torch.nn.utils.weight_norm with dim=0:
//   w_i = g_i · v_i / ||v_i||   for each output row i of a weight matrix [rows, cols].
// The layer keeps using its weight W; WeightNorm computes W from (g, v) before each forward and turns W's
// gradient into the gradients of g and v after the backward:
//   dg_i = (dW_i · v_i) / ||v_i||,   dv_i = (g_i / ||v_i||) dW_i - (g_i dg_i / ||v_i||^2) v_i

import type { Backend, Buf } from '../backend/backend.js';
import { Param } from '../layers/param.js';

export class WeightNorm {
  readonly g: Param;
  readonly v: Param;
  private norms: Float64Array;
  /** Row norms on the backend, where it has the weight-norm kernels (the device backends). */
  private dnorms: Buf | null = null;

  /** Reparameterize `weight` (its current values become v, and g their row norms, so W is unchanged). */
  constructor(private readonly be: Backend, readonly weight: Param) {
    const [rows, cols] = weight.shape;
    if (weight.shape.length !== 2) throw new Error(`WeightNorm: ${weight.name} must be a matrix, has shape [${weight.shape}]`);
    this.g = new Param(be, `${weight.name}_g`, [rows, 1]);
    this.v = new Param(be, `${weight.name}_v`, [rows, cols]);
    this.v.data.set(weight.data);
    this.norms = new Float64Array(rows);
    for (let i = 0; i < rows; i++) this.g.data[i] = this.rowNorm(i);
    if (be.weightNormForward && be.weightNormBackward) this.dnorms = be.alloc(rows);
  }

  parameters(): Param[] {
    return [this.g, this.v];
  }

  private rowNorm(i: number): number {
    const cols = this.weight.shape[1], v = this.v.data;
    let s = 0;
    for (let j = 0; j < cols; j++) s += v[i * cols + j] * v[i * cols + j];
    return Math.sqrt(s);
  }

  /** W = g v / ||v|| (before the forward). */
  compute(): void {
    const [rows, cols] = this.weight.shape, v = this.v.data, w = this.weight.data;
    if (this.dnorms) { this.be.weightNormForward!(rows, cols, this.g.data, v, w, this.dnorms); return; }
    for (let i = 0; i < rows; i++) {
      const n = this.rowNorm(i);
      this.norms[i] = n;
      const s = this.g.data[i] / n;
      for (let j = 0; j < cols; j++) w[i * cols + j] = s * v[i * cols + j];
    }
  }

  /** Accumulate dg, dv from W's gradient (after the backward), and clear W's gradient. */
  backward(): void {
    const [rows, cols] = this.weight.shape, v = this.v.data, dw = this.weight.grad, dv = this.v.grad;
    if (this.dnorms) { this.be.weightNormBackward!(rows, cols, this.g.data, v, this.dnorms, dw, this.g.grad, dv); return; }
    for (let i = 0; i < rows; i++) {
      const n = this.norms[i], g = this.g.data[i];
      let dot = 0;
      for (let j = 0; j < cols; j++) dot += dw[i * cols + j] * v[i * cols + j];
      const dg = dot / n;
      this.g.grad[i] += dg;
      const a = g / n, b = g * dg / (n * n);
      for (let j = 0; j < cols; j++) dv[i * cols + j] += a * dw[i * cols + j] - b * v[i * cols + j];
    }
    dw.fill(0);
  }
}
