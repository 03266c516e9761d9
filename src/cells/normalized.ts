// The cells with normalization (layer norm or recurrent batch norm, src/norm/norm.ts) and/or
// variable-length masks, forward and backward through time. Same slot layout as the plain cells
// (workspace.ts): the initial state in slot `init`, the output of step t in slot t+1 (forward) or t (reversed).
//
//   LSTM:  gates = N_x(x W_ih^T) + N_h(h W_hh^T) + b_ih + b_hh;  c' = f c + i g;  h' = o tanh(N_c(c'))
//   GRU:   xp = N_x(x W_ih^T) + b_ih;  hp = N_h(h W_hh^T) + b_hh;  then the GRU cell of gru.ts
//   RNN:   h' = f(N_x(x W_ih^T) + N_h(h W_hh^T) + b_ih + b_hh)
// N is the identity where there is no normalization (a mask alone).
//
// Masks: mask[t*B + b] = 0 marks a padded step of row b. There the state is carried unchanged
// (h' = h, c' = c), so padding changes neither the real steps' outputs, the final state, the gradients,
// nor the batch statistics (masked rows are left out of them).

import type { Activation, Backend, Buf } from '../backend/backend.js';
import { copy2d } from '../backend/generic.js';
import { JsBackend } from '../backend/js.js';
import type { GateNorm } from '../norm/norm.js';
import type { CellWeights } from './weights.js';
import { addInto, type LayerSizes, type Workspace } from './workspace.js';

export type CellType = 'lstm' | 'gru' | 'rnn';

/** Extra buffers of the normalized / masked path, [T, B, G*H] each (cn: [T, B, H]). */
export class NormWorkspace {
  cap = 0;
  xn!: Buf;   // N_x(x W_ih^T) for all steps (then, in backward, its gradient)
  hraw!: Buf; // h W_hh^T of one step [B, G*H]
  dhraw!: Buf; // gradient w.r.t. h W_hh^T for all steps
  cn!: Buf;   // N_c(c) (LSTM)
  dcn!: Buf;  // scratch [B, H]
  dO!: Buf;   // scratch [B, H]
  zero!: Buf; // zeros [B, H]
  saveDh!: Buf; // scratch [B, H]
  saveDc!: Buf; // scratch [B, H]
  constructor(private be: Backend, readonly G: number, readonly H: number) {}
  ensure(T: number, B: number): void {
    if (T * B <= this.cap) return;
    const be = this.be, n = T * B, G = this.G, H = this.H;
    for (const b of [this.xn, this.hraw, this.dhraw, this.cn, this.dcn, this.dO, this.zero, this.saveDh, this.saveDc]) if (b) be.free(b);
    this.dO = be.alloc(B * H); this.zero = be.alloc(B * H);
    this.xn = be.alloc(n * G * H); this.hraw = be.alloc(B * G * H); this.dhraw = be.alloc(n * G * H);
    this.cn = be.alloc(n * H); this.dcn = be.alloc(B * H); this.saveDh = be.alloc(B * H); this.saveDc = be.alloc(B * H);
    this.cap = n;
  }
}

export interface NormCellArgs {
  be: Backend;
  cell: CellType;
  act: Activation;
  w: CellWeights;
  ws: Workspace;
  nws: NormWorkspace;
  norm: GateNorm | null;
  /** [T, B] of the layer's (dilated) view, 1 = real step; null = no padding. */
  mask: Uint8Array | null;
}

const reference = new JsBackend('float32');

/** Forward through time; x: [T, B, I]. */
export function normCellForward(a: NormCellArgs, s: LayerSizes, x: Buf, xOff: number): void {
  const { be, cell, w, ws, nws, norm, mask } = a;
  const kern = be.lstmOutput ? be : reference;
  const { T, B, I, H } = s, rev = s.reverse === true, BH = B * H;
  const G = (cell === 'lstm' ? 4 : cell === 'gru' ? 3 : 1) * H, BG = B * G;
  nws.ensure(T, B);
  norm?.ensure(T, B);
  if (norm) norm.mask = mask;
  // input projections of all steps in one multiply, then N_x per step (statistics per step for batch norm)
  be.gemm(false, true, T * B, G, I, x, xOff, I, w.wih.data, 0, I, 0, nws.xn, 0, G);
  if (norm?.has('x')) for (let t = 0; t < T; t++) norm.forward('x', t, B, nws.xn, t * BG, nws.xn, t * BG);
  for (let k = 0; k < T; k++) {
    const t = rev ? T - 1 - k : k, prev = (rev ? t + 1 : t) * BH, out = (rev ? t : t + 1) * BH, o = t * BG;
    be.gemm(false, true, B, G, H, ws.h, prev, H, w.whh.data, 0, H, 0, nws.hraw, 0, G); // h_prev W_hh^T
    if (cell === 'lstm') {
      if (norm?.has('h')) norm.forward('h', t, B, nws.hraw, 0, ws.gates, o); else be.copy(BG, nws.hraw, 0, ws.gates, o);
      be.addTo(BG, nws.xn, o, ws.gates, o);
      be.addRowVector(B, G, ws.gates, o, w.bih.data, 0, ws.gates, o);
      be.addRowVector(B, G, ws.gates, o, w.bhh.data, 0, ws.gates, o);
      be.lstmCellForward(B, H, ws.gates, o, ws.c, prev, ws.c, out, ws.h, out);
      if (norm?.has('c')) { // h = o tanh(N_c(c))
        norm.forward('c', t, B, ws.c, out, nws.cn, t * BH);
        kern.lstmOutput!(B, H, ws.gates, o, nws.cn, t * BH, ws.h, out);
      }
    } else if (cell === 'gru') {
      be.addRowVector(B, G, nws.xn, o, w.bih.data, 0, ws.gates, o); // xp = N_x(.) + b_ih
      if (norm?.has('h')) norm.forward('h', t, B, nws.hraw, 0, ws.hp, o); else be.copy(BG, nws.hraw, 0, ws.hp, o);
      be.addRowVector(B, G, ws.hp, o, w.bhh.data, 0, ws.hp, o);     // hp = N_h(.) + b_hh
      be.gruCellForward(B, H, ws.gates, o, ws.hp, o, ws.h, prev, ws.act, o, ws.h, out);
    } else {
      if (norm?.has('h')) norm.forward('h', t, B, nws.hraw, 0, ws.h, out); else be.copy(BG, nws.hraw, 0, ws.h, out);
      be.addTo(BH, nws.xn, o, ws.h, out);
      be.addRowVector(B, H, ws.h, out, w.bih.data, 0, ws.h, out);
      be.addRowVector(B, H, ws.h, out, w.bhh.data, 0, ws.h, out);
      be.rnnCellForward(a.act, B, H, ws.h, out);
    }
    if (mask) {
      for (let r = 0; r < B; r++) {
        if (mask[t * B + r]) continue;
        be.copy(H, ws.h, prev + r * H, ws.h, out + r * H);
        if (cell === 'lstm') be.copy(H, ws.c, prev + r * H, ws.c, out + r * H);
      }
    }
  }
}

/**
 * Backward through time. dy: [T, B, H]. On entry ws.dhc (and ws.dc) hold the gradients w.r.t. the final
 * state; on exit w.r.t. the initial state. Accumulates parameter (and γ/β) gradients; ws.dx when needDx.
 */
export function normCellBackward(a: NormCellArgs, s: LayerSizes, x: Buf, xOff: number, dy: Buf, dyOff: number, needDx: boolean): void {
  const { be, cell, w, ws, nws, norm, mask } = a;
  const kern = be.lstmOutputBackward ? be : reference;
  const { T, B, I, H } = s, rev = s.reverse === true, BH = B * H;
  const G = (cell === 'lstm' ? 4 : cell === 'gru' ? 3 : 1) * H, BG = B * G;
  if (norm) norm.mask = mask;
  // dpre: gradient w.r.t. the pre-activations (LSTM gates, GRU xp, RNN a), [T, B, G], kept in ws.dgates
  for (let k = T - 1; k >= 0; k--) {
    const t = rev ? T - 1 - k : k, prev = (rev ? t + 1 : t) * BH, out = (rev ? t : t + 1) * BH, o = t * BG;
    addInto(be, BH, ws.dhc, 0, dy, dyOff + t * BH, ws.dh, 0);
    if (mask) { be.copy(BH, ws.dh, 0, nws.saveDh, 0); if (cell === 'lstm') be.copy(BH, ws.dc, 0, nws.saveDc, 0); }
    if (cell === 'lstm') {
      if (norm?.has('c')) {
        // h = o tanh(ĉ), ĉ = N_c(c): dh reaches the o gate and ĉ; ĉ passes its gradient back into dc, and the
        // rest is the plain LSTM step with no direct gradient into h
        kern.lstmOutputBackward!(B, H, ws.gates, o, nws.cn, t * BH, ws.dh, 0, nws.dcn, 0, nws.dO, 0);
        if (mask) for (let r = 0; r < B; r++) if (!mask[t * B + r]) be.fill(H, 0, nws.dcn, r * H);
        norm.backward('c', t, B, nws.dcn, 0, nws.dcn, 0);
        be.addTo(BH, nws.dcn, 0, ws.dc, 0);
        be.lstmCellBackward(B, H, ws.gates, o, ws.c, prev, ws.c, out, nws.zero, 0, ws.dc, 0, ws.dgates, o);
        copy2d(be, B, H, nws.dO, 0, H, ws.dgates, o + 3 * H, G);
      } else {
        be.lstmCellBackward(B, H, ws.gates, o, ws.c, prev, ws.c, out, ws.dh, 0, ws.dc, 0, ws.dgates, o);
      }
      be.copy(BG, ws.dgates, o, nws.dhraw, o); // gradient into N_h(h W_hh^T) is the gates' gradient
    } else if (cell === 'gru') {
      be.gruCellBackward(B, H, ws.act, o, ws.hp, o, ws.h, prev, ws.dh, 0, ws.dgates, o, nws.dhraw, o, ws.dhc, 0);
    } else {
      be.rnnCellBackward(a.act, B, H, ws.h, out, ws.dh, 0, ws.dgates, o);
      be.copy(BG, ws.dgates, o, nws.dhraw, o);
    }
    if (mask) {
      // padded rows: the step was the identity on the state
      for (let r = 0; r < B; r++) {
        if (mask[t * B + r]) continue;
        be.fill(G, 0, ws.dgates, o + r * G);
        be.fill(G, 0, nws.dhraw, o + r * G);
        if (cell === 'lstm') be.copy(H, nws.saveDc, r * H, ws.dc, r * H);
      }
    }
    // the bias b_hh sees the gradient before N_h (GRU: after N_h, the bias is added after it)
    if (cell === 'gru') be.sumRows(B, G, nws.dhraw, o, w.bhh.grad, 0);
    if (norm?.has('h')) norm.backward('h', t, B, nws.dhraw, o, nws.dhraw, o);
    // dh_prev (=|+=) dhraw W_hh
    be.gemm(false, false, B, H, G, nws.dhraw, o, G, w.whh.data, 0, H, cell === 'gru' ? 1 : 0, ws.dhc, 0, H);
    if (mask) for (let r = 0; r < B; r++) if (!mask[t * B + r]) be.copy(H, nws.saveDh, r * H, ws.dhc, r * H);
  }
  be.gemm(true, false, G, H, T * B, nws.dhraw, 0, G, ws.h, rev ? BH : 0, H, 1, w.whh.grad, 0, H);
  be.sumRows(T * B, G, ws.dgates, 0, w.bih.grad, 0);
  if (cell !== 'gru') be.sumRows(T * B, G, ws.dgates, 0, w.bhh.grad, 0);
  if (norm?.has('x')) for (let t = 0; t < T; t++) norm.backward('x', t, B, ws.dgates, t * BG, ws.dgates, t * BG);
  be.gemm(true, false, G, I, T * B, ws.dgates, 0, G, x, xOff, I, 1, w.wih.grad, 0, I);
  if (needDx) be.gemm(false, false, T * B, I, G, ws.dgates, 0, G, w.wih.data, 0, I, 0, ws.dx, 0, I);
}
