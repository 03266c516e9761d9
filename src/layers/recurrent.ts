// Multi-layer recurrent networks with PyTorch's interface:
//   new LSTM(backend, { inputSize, hiddenSize, numLayers, dropout }), likewise GRU and RNN.
// Parameters are named weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k} with PyTorch's shapes.
// Sequences are time-major [T, B, N]. States are [numLayers, B, H].
//
// Each layer runs its whole time loop inside one fused forward (src/cells/*.ts) and one fused backward.

import type { Activation, Backend, Buf } from '../backend/backend.js';
import { gruBackward, gruForward } from '../cells/gru.js';
import { lstmBackward, lstmForward } from '../cells/lstm.js';
import { rnnBackward, rnnForward } from '../cells/rnn.js';
import type { CellWeights } from '../cells/weights.js';
import { Workspace, type LayerSizes } from '../cells/workspace.js';
import { Rng } from '../util/rng.js';
import { Param, checkSize, type HasParams } from './param.js';

export type RnnMode = 'LSTM' | 'GRU' | 'RNN_TANH' | 'RNN_RELU';

export interface RecurrentOptions {
  inputSize: number;
  hiddenSize: number;
  numLayers?: number;
  /** Dropout on the outputs of every layer but the last (training only), as in PyTorch. */
  dropout?: number;
  /** For the plain RNN: 'tanh' (default) or 'relu'. */
  nonlinearity?: Activation;
  /** Seed of the initialisation and dropout masks. */
  seed?: number;
}

export interface RecurrentOutput {
  /** Outputs of the last layer [T, B, H], at `outOff` in `out`. Valid until the next forward. */
  out: Buf;
  outOff: number;
  /** Final hidden state [L, B, H]. */
  hN: Buf;
  /** Final cell state [L, B, H] (LSTM only, else null). */
  cN: Buf | null;
}

export interface RecurrentGrads {
  /** Gradient w.r.t. the input sequence [T, B, I] (when requested). */
  dx: Buf | null;
  /** Gradients w.r.t. the initial states [L, B, H]. */
  dh0: Buf;
  dc0: Buf | null;
}

const gateCount: Record<RnnMode, number> = { LSTM: 4, GRU: 3, RNN_TANH: 1, RNN_RELU: 1 };

class Layer {
  readonly w: CellWeights;
  readonly ws: Workspace;
  constructor(be: Backend, readonly mode: RnnMode, k: number, readonly I: number, readonly H: number, B: number) {
    const G = gateCount[mode] * H;
    this.w = {
      wih: new Param(be, `weight_ih_l${k}`, [G, I]),
      whh: new Param(be, `weight_hh_l${k}`, [G, H]),
      bih: new Param(be, `bias_ih_l${k}`, [G]),
      bhh: new Param(be, `bias_hh_l${k}`, [G]),
    };
    this.ws = new Workspace(be, gateCount[mode], I, H, B, mode === 'LSTM', mode === 'GRU');
  }
}

export class RecurrentStack implements HasParams {
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly dropout: number;
  readonly layers: Layer[];
  private rng: Rng;
  private B = 0;
  private T = 0;
  private train = false;
  private x: Buf | null = null;
  private xOff = 0;
  private hN!: Buf;
  private cN!: Buf;
  private dh0!: Buf;
  private dc0!: Buf;
  /** Dropout masks and dropped outputs between layers: [T, B, H] each. */
  private masks: Buf[] = [];
  private dropped: Buf[] = [];
  private dropCap = 0;

  constructor(readonly be: Backend, readonly mode: RnnMode, opts: RecurrentOptions) {
    this.inputSize = opts.inputSize;
    this.hiddenSize = opts.hiddenSize;
    this.numLayers = opts.numLayers ?? 1;
    this.dropout = opts.dropout ?? 0;
    for (const [k, v] of [['inputSize', this.inputSize], ['hiddenSize', this.hiddenSize], ['numLayers', this.numLayers]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`${mode}: ${k} must be a positive integer, got ${v}`);
    }
    if (!(this.dropout >= 0 && this.dropout < 1)) throw new Error(`${mode}: dropout must be in [0, 1), got ${this.dropout}`);
    if (opts.nonlinearity === 'relu' && mode === 'RNN_TANH') this.mode = mode = 'RNN_RELU';
    this.rng = new Rng(opts.seed ?? 0);
    this.layers = [];
    const stdv = 1 / Math.sqrt(this.hiddenSize);
    for (let k = 0; k < this.numLayers; k++) {
      const layer = new Layer(be, mode, k, k === 0 ? this.inputSize : this.hiddenSize, this.hiddenSize, 1);
      for (const p of Object.values(layer.w)) p.uniform(this.rng, -stdv, stdv); // PyTorch's reset_parameters
      this.layers.push(layer);
    }
    this.allocStates(1);
  }

  parameters(): Param[] {
    return this.layers.flatMap((l) => [l.w.wih, l.w.whh, l.w.bih, l.w.bhh]);
  }

  private get activation(): Activation {
    return this.mode === 'RNN_RELU' ? 'relu' : 'tanh';
  }

  private allocStates(B: number): void {
    const n = this.numLayers * B * this.hiddenSize;
    this.hN = this.be.alloc(n);
    this.cN = this.be.alloc(this.mode === 'LSTM' ? n : 0);
    this.dh0 = this.be.alloc(n);
    this.dc0 = this.be.alloc(this.mode === 'LSTM' ? n : 0);
    this.B = B;
  }

  /** Seed the dropout masks (for repeatable or resumed runs). */
  get rngState(): number[] { return this.rng.getState(); }
  set rngState(s: number[]) { this.rng.setState(s); }

  /**
   * x: [T, B, inputSize] at xOff (kept by reference until backward). h0/c0: [L, B, H] or null for zeros.
   */
  forward(x: Buf, xOff: number, T: number, B: number, h0: Buf | null, c0: Buf | null, train: boolean): RecurrentOutput {
    const H = this.hiddenSize, L = this.numLayers, BH = B * H;
    if (x.length - xOff < T * B * this.inputSize) {
      throw new Error(`${this.mode}: input has ${x.length - xOff} values, expected [T=${T}, B=${B}, inputSize=${this.inputSize}] = ${T * B * this.inputSize}`);
    }
    if (h0) checkSize(`${this.mode}: h0`, h0.length, [L, B, H]);
    if (c0 && this.mode === 'LSTM') checkSize(`${this.mode}: c0`, c0.length, [L, B, H]);
    if (B !== this.B) this.allocStates(B);
    this.T = T; this.train = train; this.x = x; this.xOff = xOff;
    const dropping = train && this.dropout > 0 && L > 1;
    if (dropping && this.dropCap < T * BH) {
      for (const b of [...this.masks, ...this.dropped]) this.be.free(b);
      this.masks = []; this.dropped = [];
      for (let k = 0; k < L - 1; k++) { this.masks.push(this.be.alloc(T * BH)); this.dropped.push(this.be.alloc(T * BH)); }
      this.dropCap = T * BH;
    }
    let inp = x, inpOff = xOff;
    for (let k = 0; k < L; k++) {
      const layer = this.layers[k], ws = layer.ws;
      ws.ensure(T, B);
      if (h0) this.be.copy(BH, h0, k * BH, ws.h, 0); else this.be.fill(BH, 0, ws.h, 0);
      if (this.mode === 'LSTM') { if (c0) this.be.copy(BH, c0, k * BH, ws.c, 0); else this.be.fill(BH, 0, ws.c, 0); }
      const s: LayerSizes = { T, B, I: layer.I, H };
      this.cellForward(layer, s, inp, inpOff);
      this.be.copy(BH, ws.h, T * BH, this.hN, k * BH);
      if (this.mode === 'LSTM') this.be.copy(BH, ws.c, T * BH, this.cN, k * BH);
      inp = ws.h; inpOff = BH;
      if (dropping && k < L - 1) {
        const mask = this.masks[k], keep = 1 - this.dropout, inv = 1 / keep;
        for (let i = 0; i < T * BH; i++) mask[i] = this.rng.next() < keep ? inv : 0;
        this.be.mul(T * BH, ws.h, BH, mask, 0, this.dropped[k], 0);
        inp = this.dropped[k]; inpOff = 0;
      }
    }
    const last = this.layers[L - 1].ws;
    return { out: last.h, outOff: BH, hN: this.hN, cN: this.mode === 'LSTM' ? this.cN : null };
  }

  /**
   * dy: gradient w.r.t. the outputs [T, B, H]; dhN/dcN: gradients w.r.t. the final states (null = zero).
   * Accumulates into every parameter's grad.
   */
  backward(dy: Buf, dyOff: number, dhN: Buf | null, dcN: Buf | null, needDx: boolean): RecurrentGrads {
    if (!this.x) throw new Error(`${this.mode}: backward called before forward`);
    const { T, B } = this, H = this.hiddenSize, L = this.numLayers, BH = B * H;
    const dropping = this.train && this.dropout > 0 && L > 1;
    let g = dy, gOff = dyOff;
    for (let k = L - 1; k >= 0; k--) {
      const layer = this.layers[k], ws = layer.ws;
      if (dhN) this.be.copy(BH, dhN, k * BH, ws.dhc, 0); else this.be.fill(BH, 0, ws.dhc, 0);
      if (this.mode === 'LSTM') { if (dcN) this.be.copy(BH, dcN, k * BH, ws.dc, 0); else this.be.fill(BH, 0, ws.dc, 0); }
      let inp: Buf, inpOff: number;
      if (k === 0) { inp = this.x; inpOff = this.xOff; }
      else if (dropping) { inp = this.dropped[k - 1]; inpOff = 0; }
      else { inp = this.layers[k - 1].ws.h; inpOff = BH; }
      const s: LayerSizes = { T, B, I: layer.I, H };
      this.cellBackward(layer, s, inp, inpOff, g, gOff, k > 0 || needDx);
      this.be.copy(BH, ws.dhc, 0, this.dh0, k * BH);
      if (this.mode === 'LSTM') this.be.copy(BH, ws.dc, 0, this.dc0, k * BH);
      g = ws.dx; gOff = 0;
      if (dropping && k > 0) this.be.mul(T * BH, ws.dx, 0, this.masks[k - 1], 0, ws.dx, 0);
    }
    return { dx: needDx ? this.layers[0].ws.dx : null, dh0: this.dh0, dc0: this.mode === 'LSTM' ? this.dc0 : null };
  }

  private cellForward(layer: Layer, s: LayerSizes, x: Buf, xOff: number): void {
    switch (this.mode) {
      case 'LSTM': return lstmForward(this.be, layer.w, layer.ws, s, x, xOff);
      case 'GRU': return gruForward(this.be, layer.w, layer.ws, s, x, xOff);
      default: return rnnForward(this.be, this.activation, layer.w, layer.ws, s, x, xOff);
    }
  }

  private cellBackward(layer: Layer, s: LayerSizes, x: Buf, xOff: number, dy: Buf, dyOff: number, needDx: boolean): void {
    switch (this.mode) {
      case 'LSTM': return lstmBackward(this.be, layer.w, layer.ws, s, x, xOff, dy, dyOff, needDx);
      case 'GRU': return gruBackward(this.be, layer.w, layer.ws, s, x, xOff, dy, dyOff, needDx);
      default: return rnnBackward(this.be, this.activation, layer.w, layer.ws, s, x, xOff, dy, dyOff, needDx);
    }
  }
}

export class LSTM extends RecurrentStack {
  constructor(be: Backend, opts: RecurrentOptions) { super(be, 'LSTM', opts); }
}
export class GRU extends RecurrentStack {
  constructor(be: Backend, opts: RecurrentOptions) { super(be, 'GRU', opts); }
}
export class RNN extends RecurrentStack {
  constructor(be: Backend, opts: RecurrentOptions) { super(be, opts.nonlinearity === 'relu' ? 'RNN_RELU' : 'RNN_TANH', opts); }
}
