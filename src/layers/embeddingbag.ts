// EmbeddingBag, PyTorch's nn.EmbeddingBag: bags of ids -> one vector each (sum or mean of table rows).
//
// Input follows PyTorch's 1-D convention: flat `ids` and `offsets` (offsets[i] = start of bag i; the last
// bag ends at ids.length). Modes:
//   'sum'  : out_i = sum_{r in bag i} weight[ids[r]]
//   'mean' : out_i = sum / n_i
//   'sqrt' : out_i = sum / sqrt(n_i)   (PyTorch: mode='sum' with per_sample_weights = 1/sqrt(n_i))
// An empty bag gives a zero vector (as PyTorch). The backward is sparse-aware: it adds into the table's
// gradient rows of the ids seen in the batch only, and `touchedRows()` / `zeroGradTouched()` let a caller
// clear just those rows instead of the whole table.
//
// Built from backend primitives only: embeddingForward (gather), sumRows (a bag's rows are contiguous after
// the gather), scale, copy and embeddingBackward (scatter-add).

import { immediateOnly } from '../backend/sync.js';
import type { Backend, Buf } from '../backend/backend.js';
import type { Rng } from '../util/rng.js';
import { Param, type HasParams } from './param.js';

export type BagMode = 'sum' | 'mean' | 'sqrt';

export class EmbeddingBag implements HasParams {
  readonly weight: Param;
  private tmp: Buf;
  private cap = 0;
  private ids: Int32Array = new Int32Array(0);
  private offsets: Int32Array = new Int32Array(0);
  private n = 0;
  private bags = 0;
  private touched = new Int32Array(0);
  private touchedCount = 0;
  private mark: Uint8Array;

  constructor(readonly be: Backend, readonly num: number, readonly dim: number, readonly mode: BagMode, rng: Rng) {
    immediateOnly(be, 'EmbeddingBag');
    if (!['sum', 'mean', 'sqrt'].includes(mode)) throw new Error(`EmbeddingBag: mode must be sum, mean or sqrt, got '${mode}'`);
    this.weight = new Param(be, 'weight', [num, dim]);
    for (let i = 0; i < this.weight.size; i++) this.weight.data[i] = rng.normal(); // PyTorch: N(0, 1)
    this.tmp = be.alloc(0);
    this.mark = new Uint8Array(num);
  }

  parameters(): Param[] {
    return [this.weight];
  }

  /** The factor a bag of n ids is multiplied by. */
  factor(n: number): number {
    if (n === 0) return 0;
    return this.mode === 'mean' ? 1 / n : this.mode === 'sqrt' ? 1 / Math.sqrt(n) : 1;
  }

  private end(i: number): number {
    return i + 1 < this.bags ? this.offsets[i + 1] : this.n;
  }

  /**
   * out [bags, dim] at outOff. ids/offsets are kept (by reference) for the backward.
   * @param n number of ids used (default ids.length)
   */
  forward(ids: Int32Array, offsets: Int32Array, out: Buf, outOff: number, n = ids.length): void {
    const { be, dim } = this, bags = offsets.length;
    for (let r = 0; r < n; r++) {
      const id = ids[r];
      if (!(id >= 0 && id < this.num)) throw new Error(`EmbeddingBag: id ${id} at position ${r} is outside [0, ${this.num})`);
    }
    for (let i = 0; i < bags; i++) {
      const s = offsets[i], e = i + 1 < bags ? offsets[i + 1] : n;
      if (!(s >= 0 && s <= e && e <= n)) throw new Error(`EmbeddingBag: offsets must be non-decreasing within [0, ${n}], bag ${i} is [${s}, ${e})`);
    }
    this.ids = ids; this.offsets = offsets; this.n = n; this.bags = bags;
    if (this.cap < n * dim) { be.free(this.tmp); this.tmp = be.alloc(n * dim); this.cap = n * dim; }
    be.embeddingForward(n, dim, ids, this.weight.data, this.tmp, 0);
    be.fill(bags * dim, 0, out, outOff);
    for (let i = 0; i < bags; i++) {
      const s = offsets[i], len = this.end(i) - s;
      if (len === 0) continue;
      be.sumRows(len, dim, this.tmp, s * dim, out, outOff + i * dim);
      const f = this.factor(len);
      if (f !== 1) be.scale(dim, f, out, outOff + i * dim);
    }
  }

  /** Adds dOut [bags, dim] back into the table rows of the last forward's ids. */
  backward(dOut: Buf, dOutOff: number): void {
    const { be, dim, n } = this;
    for (let i = 0; i < this.bags; i++) {
      const s = this.offsets[i], len = this.end(i) - s;
      for (let r = s; r < s + len; r++) be.copy(dim, dOut, dOutOff + i * dim, this.tmp, r * dim);
      const f = this.factor(len);
      if (f !== 1 && len > 0) be.scale(len * dim, f, this.tmp, s * dim);
    }
    be.embeddingBackward(n, dim, this.ids, this.tmp, 0, this.weight.grad);
    // remember the distinct rows touched (for zeroGradTouched / sparse optimizers)
    if (this.touched.length < this.touchedCount + n) {
      const t = new Int32Array(Math.max(2 * this.touched.length, this.touchedCount + n));
      t.set(this.touched.subarray(0, this.touchedCount));
      this.touched = t;
    }
    for (let r = 0; r < n; r++) {
      const id = this.ids[r];
      if (!this.mark[id]) { this.mark[id] = 1; this.touched[this.touchedCount++] = id; }
    }
  }

  /** Distinct table rows whose gradient is non-zero since the last zeroGradTouched(). */
  touchedRows(): Int32Array {
    return this.touched.subarray(0, this.touchedCount);
  }

  /** Zero the gradient of the touched rows only (the rest of the table's gradient is still zero). */
  zeroGradTouched(): void {
    for (let k = 0; k < this.touchedCount; k++) {
      const id = this.touched[k];
      this.be.fill(this.dim, 0, this.weight.grad, id * this.dim);
      this.mark[id] = 0;
    }
    this.touchedCount = 0;
  }
}
