// The four parameters of one recurrent layer direction, named as PyTorch names them.

import type { Backend, Buf, PackedB } from '../backend/backend.js';
import type { Param } from '../layers/param.js';

export interface CellWeights {
  wih: Param; // weight_ih_l{k}: [G*H, I]
  whh: Param; // weight_hh_l{k}: [G*H, H]
  bih: Param; // bias_ih_l{k}:   [G*H]
  bhh: Param; // bias_hh_l{k}:   [G*H]
}

/**
 * The recurrent multiply of every time step, C (+)= A · op(W): with W packed once for the whole sweep where
 * the backend can (packB / gemmPacked), else a plain gemm. Short sweeps (sampling) skip the packing, which
 * costs more than it saves there.
 */
export class StepMatmul {
  private P: PackedB | null;

  constructor(private be: Backend, private transW: boolean, private K: number, private N: number,
    private W: Buf, private ldw: number, steps: number) {
    this.P = steps >= 4 && be.packB && be.gemmPacked ? be.packB(transW, K, N, W, 0, ldw) : null;
  }

  run(M: number, A: Buf, aOff: number, lda: number, beta: 0 | 1, C: Buf, cOff: number, ldc: number): void {
    if (this.P) this.be.gemmPacked!(false, M, A, aOff, lda, this.P, beta, C, cOff, ldc);
    else this.be.gemm(false, this.transW, M, this.N, this.K, A, aOff, lda, this.W, 0, this.ldw, beta, C, cOff, ldc);
  }

  free(): void {
    if (this.P) this.be.freePacked?.(this.P);
    this.P = null;
  }
}
