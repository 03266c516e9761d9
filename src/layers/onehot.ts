// One-hot encoding: id -> a row of V values, 1 at the id and 0 elsewhere (F.one_hot). Implemented as an
// embedding lookup in an identity table, so it runs through the backend like any other layer. No
// parameters. Ids < 0 (padding) give a zero row.

import type { Backend, Buf } from '../backend/backend.js';

export class OneHot {
  private eye: Buf;
  private idsBuf = new Int32Array(0);

  constructor(readonly be: Backend, readonly numClasses: number) {
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new Error(`OneHot: numClasses must be a positive integer, got ${numClasses}`);
    this.eye = be.alloc((numClasses + 1) * numClasses); // row numClasses: all zeros (padding)
    for (let i = 0; i < numClasses; i++) this.eye[i * numClasses + i] = 1;
  }

  /** out [n, V] at outOff = one_hot(ids[0..n)). */
  forward(n: number, ids: Int32Array, out: Buf, outOff: number): void {
    const V = this.numClasses;
    if (this.idsBuf.length < n) this.idsBuf = new Int32Array(n);
    for (let r = 0; r < n; r++) {
      const id = ids[r];
      if (id >= V) throw new Error(`OneHot: id ${id} at position ${r} is outside [0, ${V})`);
      this.idsBuf[r] = id < 0 ? V : id;
    }
    this.be.embeddingForward(n, V, this.idsBuf, this.eye, out, outOff);
  }
}
