// Kernels that a backend may leave out, written once in terms of the required ones.

import type { Backend, Buf } from './backend.js';

/** Y[r*ldy + j] = X[r*ldx + j]: the backend's copy2d, or one copy per row. */
export function copy2d(be: Backend, rows: number, n: number, X: Buf, xOff: number, ldx: number, Y: Buf, yOff: number, ldy: number): void {
  if (be.copy2d) return be.copy2d(rows, n, X, xOff, ldx, Y, yOff, ldy);
  if (ldx === n && ldy === n) return be.copy(rows * n, X, xOff, Y, yOff);
  for (let r = 0; r < rows; r++) be.copy(n, X, xOff + r * ldx, Y, yOff + r * ldy);
}
