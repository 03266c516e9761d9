// LSTM layer, one direction: forward and backward through time (PyTorch's equations and gate order).
//
//   i = σ(W_ii x + b_ii + W_hi h + b_hi)        gates [B, 4H] in order i, f, g, o
//   f = σ(W_if x + b_if + W_hf h + b_hf)
//   g = tanh(W_ig x + b_ig + W_hg h + b_hg)
//   o = σ(W_io x + b_io + W_ho h + b_ho)
//   c' = f * c + i * g
//   h' = o * tanh(c')
//
// Work is laid out as cuDNN does it: the input projection of all T steps is one multiply, each step adds
// its recurrent multiply and runs one fused gate kernel, and after the backward sweep the weight gradients
// of all steps are one multiply each.

import type { Backend, Buf } from '../backend/backend.js';
import { addInto, type LayerSizes, type Workspace } from './workspace.js';
import { StepMatmul, type CellWeights } from './weights.js';

/**
 * x: [T, B, I] at xOff. States live in slots of ws.h / ws.c (see slots() in workspace.ts): forward, the
 * initial state is slot 0 and the output of step t slot t+1; reversed, the initial state is slot T and
 * the output of step t slot t, so that outputs are always in time order.
 */
export function lstmForward(be: Backend, w: CellWeights, ws: Workspace, s: LayerSizes, x: Buf, xOff: number): void {
  const { T, B, I, H } = s, G = 4 * H, BH = B * H, rev = s.reverse === true;
  // bias = b_ih + b_hh; gates[t] = x[t] W_ih^T + bias for all t      [T*B, 4H]
  be.copy(G, w.bih.data, 0, ws.bias, 0);
  be.addTo(G, w.bhh.data, 0, ws.bias, 0);
  be.gemm(false, true, T * B, G, I, x, xOff, I, w.wih.data, 0, I, 0, ws.gates, 0, G);
  be.addRowVector(T * B, G, ws.gates, 0, ws.bias, 0, ws.gates, 0);
  const whh = new StepMatmul(be, true, H, G, w.whh.data, H, T);
  for (let k = 0; k < T; k++) {
    const t = rev ? T - 1 - k : k, prev = (rev ? t + 1 : t) * BH, out = (rev ? t : t + 1) * BH;
    // gates[t] += h_prev W_hh^T      [B, H] x [H, 4H]
    whh.run(B, ws.h, prev, H, 1, ws.gates, t * B * G, G);
    be.lstmCellForward(B, H, ws.gates, t * B * G, ws.c, prev, ws.c, out, ws.h, out);
  }
  whh.free();
}

/**
 * dy: [T, B, H] at dyOff, gradient w.r.t. the outputs h[1..T]. On entry ws.dhc / ws.dc hold the gradients
 * w.r.t. the final states (zero when they are not used); on exit they hold the gradients w.r.t. h0 / c0.
 * Accumulates parameter gradients; writes the input gradient into ws.dx when needDx.
 */
export function lstmBackward(be: Backend, w: CellWeights, ws: Workspace, s: LayerSizes, x: Buf, xOff: number,
  dy: Buf, dyOff: number, needDx: boolean): void {
  const { T, B, I, H } = s, G = 4 * H, BH = B * H, rev = s.reverse === true;
  const whh = new StepMatmul(be, false, G, H, w.whh.data, H, T);
  for (let k = T - 1; k >= 0; k--) {
    const t = rev ? T - 1 - k : k, prev = (rev ? t + 1 : t) * BH, out = (rev ? t : t + 1) * BH;
    // dh = dy[t] + dh carried from step t+1
    addInto(be, BH, ws.dhc, 0, dy, dyOff + t * BH, ws.dh, 0);
    be.lstmCellBackward(B, H, ws.gates, t * B * G, ws.c, prev, ws.c, out, ws.dh, 0, ws.dc, 0, ws.dgates, t * B * G);
    // dh_{t-1} = dgates[t] W_hh      [B, 4H] x [4H, H]
    whh.run(B, ws.dgates, t * B * G, G, 0, ws.dhc, 0, H);
  }
  whh.free();
  // Weight gradients of all steps at once.
  // dW_hh += dgates^T h_prev: the previous states of steps 0..T-1 are slots 0..T-1 (forward) or 1..T (reversed)
  be.gemm(true, false, G, H, T * B, ws.dgates, 0, G, ws.h, rev ? BH : 0, H, 1, w.whh.grad, 0, H);
  be.gemm(true, false, G, I, T * B, ws.dgates, 0, G, x, xOff, I, 1, w.wih.grad, 0, I); // dW_ih += dgates^T x
  be.sumRows(T * B, G, ws.dgates, 0, w.bih.grad, 0);
  be.sumRows(T * B, G, ws.dgates, 0, w.bhh.grad, 0);
  if (needDx) be.gemm(false, false, T * B, I, G, ws.dgates, 0, G, w.wih.data, 0, I, 0, ws.dx, 0, I); // dx = dgates W_ih
}
