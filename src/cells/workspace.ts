// Buffers a recurrent layer needs for one forward/backward over T steps of B sequences.
// Allocated once, grown only when a longer or wider batch arrives; never per time step.

import type { Backend, Buf } from '../backend/backend.js';

export interface LayerSizes {
  T: number; // time steps
  B: number; // batch
  I: number; // input features
  H: number; // hidden units
  /** Run the sequence backwards in time (the second direction of a bidirectional layer). */
  reverse?: boolean;
}

/**
 * Where states live in ws.h / ws.c, [(T+1), B, H] in slots: forward, the initial state is slot 0 and the
 * output of step t is slot t+1; reversed, the output of step t is slot t and the initial state slot T.
 * Either way the outputs are T consecutive slots in time order, and the previous states of steps
 * 0..T-1 are also consecutive (slots 0..T-1 or 1..T), so each weight gradient is one multiply.
 */
export function slots(T: number, reverse: boolean): { init: number; final: number; outputs: number } {
  return reverse ? { init: T, final: 0, outputs: 0 } : { init: 0, final: T, outputs: 1 };
}

/** y = a + b: one kernel where the backend has `add` (device backends count dispatches), else copy + addTo. */
export function addInto(be: Backend, n: number, a: Buf, aOff: number, b: Buf, bOff: number, y: Buf, yOff: number): void {
  if (be.add) be.add(n, a, aOff, b, bOff, y, yOff);
  else { be.copy(n, a, aOff, y, yOff); be.addTo(n, b, bOff, y, yOff); }
}

export class Workspace {
  capTB = 0;
  /** h[t] for t = 0..T: h[0] is the initial state, h[1..T] the outputs. [(T+1), B, H] */
  h!: Buf;
  /** LSTM cell states, same layout as h. */
  c!: Buf;
  /** Gate pre-activations, then activations: [T, B, G*H] (G = 4 LSTM, 3 GRU, unused for RNN). */
  gates!: Buf;
  /** GRU: hidden projections h W_hh^T + b_hh, [T, B, 3H]. */
  hp!: Buf;
  /** GRU: activations r, z, n, [T, B, 3H]. */
  act!: Buf;
  /** Gradients w.r.t. gate pre-activations for all steps: [T, B, G*H]. */
  dgates!: Buf;
  /** GRU: gradients w.r.t. hp, [T, B, 3H]. */
  dhp!: Buf;
  /** Gradient into the layer input: [T, B, I]. */
  dx!: Buf;
  /** Per-step scratch [B, H]: total gradient into h_t. */
  dh: Buf;
  /** Carried gradient into h_{t-1}; holds dhN on entry to backward and dh0 on exit. [B, H] */
  dhc: Buf;
  /** Carried gradient into c_{t-1} (LSTM); dcN on entry, dc0 on exit. [B, H] */
  dc: Buf;
  /** Combined bias b_ih + b_hh (LSTM, RNN). [G*H] */
  bias: Buf;

  constructor(private be: Backend, readonly G: number, readonly I: number, readonly H: number,
    private B: number, readonly hasCell: boolean, readonly hasHp: boolean) {
    this.dh = be.alloc(B * H);
    this.dhc = be.alloc(B * H);
    this.dc = be.alloc(B * H);
    this.bias = be.alloc(Math.max(G, 1) * H);
  }

  /** Make room for T steps of B sequences. Keeps h[0]/c[0] (the initial state) when B is unchanged. */
  ensure(T: number, B: number): void {
    if (B !== this.B) {
      this.B = B;
      for (const k of ['dh', 'dhc', 'dc'] as const) { this.be.free(this[k]); this[k] = this.be.alloc(B * this.H); }
      this.capTB = 0;
    }
    if (T * B <= this.capTB) return;
    const be = this.be, H = this.H, G = this.G;
    // the initial state h[0] / c[0] moves to the new buffers on the backend (a device backend's host copy may be stale)
    const oldH = this.capTB > 0 ? this.h : null, oldC = this.capTB > 0 && this.hasCell ? this.c : null;
    if (this.capTB > 0) for (const k of ['gates', 'hp', 'act', 'dgates', 'dhp', 'dx'] as const) if (this[k]) be.free(this[k]);
    this.capTB = T * B;
    this.h = be.alloc((T + 1) * B * H);
    this.c = be.alloc(this.hasCell ? (T + 1) * B * H : 0);
    this.gates = be.alloc(G > 1 ? T * B * G * H : 0);
    this.hp = be.alloc(this.hasHp ? T * B * 3 * H : 0);
    this.act = be.alloc(this.hasHp ? T * B * 3 * H : 0);
    this.dgates = be.alloc(T * B * G * H);
    this.dhp = be.alloc(this.hasHp ? T * B * 3 * H : 0);
    this.dx = be.alloc(T * B * this.I);
    if (oldH) { be.copy(B * H, oldH, 0, this.h, 0); be.free(oldH); }
    if (oldC) { be.copy(B * H, oldC, 0, this.c, 0); be.free(oldC); }
  }
}
