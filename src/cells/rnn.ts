// Plain (Elman) RNN layer, one direction, as in the lecture and PyTorch's nn.RNN:
//
//   a_t = b + W s_{t-1} + U x_t        (PyTorch: x W_ih^T + b_ih + h W_hh^T + b_hh)
//   s_t = f(a_t)                        f = tanh or relu
//
// The pre-activations are computed in place in the output slots of ws.h and activated there, so the
// outputs need no copy (forward: slots 1..T; reversed: slots 0..T-1, the initial state in slot T).

import type { Activation, Backend, Buf } from '../backend/backend.js';
import { addInto, type LayerSizes, type Workspace } from './workspace.js';
import { StepMatmul, type CellWeights } from './weights.js';

export function rnnForward(be: Backend, f: Activation, w: CellWeights, ws: Workspace, s: LayerSizes, x: Buf, xOff: number): void {
  const { T, B, I, H } = s, BH = B * H, rev = s.reverse === true, outs = rev ? 0 : BH;
  be.copy(H, w.bih.data, 0, ws.bias, 0);
  be.addTo(H, w.bhh.data, 0, ws.bias, 0);
  be.gemm(false, true, T * B, H, I, x, xOff, I, w.wih.data, 0, I, 0, ws.h, outs, H); // a = x W_ih^T
  be.addRowVector(T * B, H, ws.h, outs, ws.bias, 0, ws.h, outs);                       //   + b_ih + b_hh
  const whh = new StepMatmul(be, true, H, H, w.whh.data, H, T);
  for (let k = 0; k < T; k++) {
    const t = rev ? T - 1 - k : k, prev = (rev ? t + 1 : t) * BH, out = (rev ? t : t + 1) * BH;
    whh.run(B, ws.h, prev, H, 1, ws.h, out, H); // a_t += h_prev W_hh^T
    be.rnnCellForward(f, B, H, ws.h, out);
  }
  whh.free();
}

export function rnnBackward(be: Backend, f: Activation, w: CellWeights, ws: Workspace, s: LayerSizes, x: Buf, xOff: number,
  dy: Buf, dyOff: number, needDx: boolean): void {
  const { T, B, I, H } = s, BH = B * H, rev = s.reverse === true;
  const whh = new StepMatmul(be, false, H, H, w.whh.data, H, T);
  for (let k = T - 1; k >= 0; k--) {
    const t = rev ? T - 1 - k : k, out = (rev ? t : t + 1) * BH;
    addInto(be, BH, ws.dhc, 0, dy, dyOff + t * BH, ws.dh, 0);
    be.rnnCellBackward(f, B, H, ws.h, out, ws.dh, 0, ws.dgates, t * BH);                     // da = dh f'(a)
    whh.run(B, ws.dgates, t * BH, H, 0, ws.dhc, 0, H); // dh_{t-1} = da W_hh
  }
  whh.free();
  be.gemm(true, false, H, H, T * B, ws.dgates, 0, H, ws.h, rev ? BH : 0, H, 1, w.whh.grad, 0, H);
  be.gemm(true, false, H, I, T * B, ws.dgates, 0, H, x, xOff, I, 1, w.wih.grad, 0, I);
  be.sumRows(T * B, H, ws.dgates, 0, w.bih.grad, 0);
  be.sumRows(T * B, H, ws.dgates, 0, w.bhh.grad, 0);
  if (needDx) be.gemm(false, false, T * B, I, H, ws.dgates, 0, H, w.wih.data, 0, I, 0, ws.dx, 0, I);
}
