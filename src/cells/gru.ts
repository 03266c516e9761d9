// GRU layer, one direction: forward and backward through time (PyTorch's equations, gate order r, z, n).
//
//   r = σ(W_ir x + b_ir + W_hr h + b_hr)
//   z = σ(W_iz x + b_iz + W_hz h + b_hz)
//   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
//   h' = (1 - z) * n + z * h
//
// xp = x W_ih^T + b_ih for all steps in one multiply (kept in ws.gates); per step hp = h W_hh^T + b_hh
// (kept in ws.hp, the backward needs its n part) and one fused kernel writing r, z, n into ws.act.

import type { Backend, Buf } from '../backend/backend.js';
import { addInto, type LayerSizes, type Workspace } from './workspace.js';
import { StepMatmul, type CellWeights } from './weights.js';

export function gruForward(be: Backend, w: CellWeights, ws: Workspace, s: LayerSizes, x: Buf, xOff: number): void {
  const { T, B, I, H } = s, G = 3 * H, BH = B * H, rev = s.reverse === true;
  be.gemm(false, true, T * B, G, I, x, xOff, I, w.wih.data, 0, I, 0, ws.gates, 0, G); // xp = x W_ih^T
  be.addRowVector(T * B, G, ws.gates, 0, w.bih.data, 0, ws.gates, 0);                 //    + b_ih
  const whh = new StepMatmul(be, true, H, G, w.whh.data, H, T);
  for (let k = 0; k < T; k++) {
    const t = rev ? T - 1 - k : k, prev = (rev ? t + 1 : t) * BH, out = (rev ? t : t + 1) * BH, o = t * B * G;
    whh.run(B, ws.h, prev, H, 0, ws.hp, o, G);                                      // hp = h_prev W_hh^T
    be.addRowVector(B, G, ws.hp, o, w.bhh.data, 0, ws.hp, o);                       //    + b_hh
    be.gruCellForward(B, H, ws.gates, o, ws.hp, o, ws.h, prev, ws.act, o, ws.h, out);
  }
  whh.free();
}

export function gruBackward(be: Backend, w: CellWeights, ws: Workspace, s: LayerSizes, x: Buf, xOff: number,
  dy: Buf, dyOff: number, needDx: boolean): void {
  const { T, B, I, H } = s, G = 3 * H, BH = B * H, rev = s.reverse === true;
  const whh = new StepMatmul(be, false, G, H, w.whh.data, H, T);
  for (let k = T - 1; k >= 0; k--) {
    const t = rev ? T - 1 - k : k, prev = (rev ? t + 1 : t) * BH, o = t * B * G;
    addInto(be, BH, ws.dhc, 0, dy, dyOff + t * BH, ws.dh, 0);
    // writes dxp (into dgates), dhp, and dhc = dh * z
    be.gruCellBackward(B, H, ws.act, o, ws.hp, o, ws.h, prev, ws.dh, 0, ws.dgates, o, ws.dhp, o, ws.dhc, 0);
    // dh_{t-1} += dhp[t] W_hh     [B, 3H] x [3H, H]
    whh.run(B, ws.dhp, o, G, 1, ws.dhc, 0, H);
  }
  whh.free();
  be.gemm(true, false, G, H, T * B, ws.dhp, 0, G, ws.h, rev ? BH : 0, H, 1, w.whh.grad, 0, H); // dW_hh += dhp^T h_prev
  be.gemm(true, false, G, I, T * B, ws.dgates, 0, G, x, xOff, I, 1, w.wih.grad, 0, I); // dW_ih += dxp^T x
  be.sumRows(T * B, G, ws.dhp, 0, w.bhh.grad, 0);
  be.sumRows(T * B, G, ws.dgates, 0, w.bih.grad, 0);
  if (needDx) be.gemm(false, false, T * B, I, G, ws.dgates, 0, G, w.wih.data, 0, I, 0, ws.dx, 0, I);
}
