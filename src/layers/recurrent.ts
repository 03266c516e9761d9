// Multi-layer recurrent networks with PyTorch's interface:
//   new LSTM(backend, { inputSize, hiddenSize, numLayers, bidirectional, dropout }), likewise GRU and RNN.
// Parameters are named weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k} (and *_reverse for the
// second direction) with PyTorch's shapes. Sequences are time-major [T, B, N].
//
// Each layer direction runs its whole time loop inside one fused forward (src/cells/*.ts) and one fused
// backward. Beyond PyTorch, as the lecture describes recurrent layers:
//   - dilation d (per layer): the state at step t comes from step t-d. A time-major [T, B, N] buffer is
//     also a [T/d, d*B, N] buffer whose d*B rows are the d interleaved sub-sequences, so a dilated layer
//     is the plain layer run on T/d steps of d*B rows, with no copy (T must be a multiple of d).
//   - stride s (per layer): the layer runs on every s-th step of the layer below (steps 0, s, 2s, ...)
//     and outputs at that rate: ceil(T/s) steps.
//   - dropout between layers, inverted, training only; `dropoutSameMask` keeps one mask for all steps.
//   - normalization of the gate pre-activations: see src/norm (`norm: 'layer' | 'batch' | 'weight'`).
//
// States: for each layer k and direction, a block of [d_k*B, H] (d_k = the layer's dilation), blocks in
// PyTorch's order (layer-major, then direction). Without dilation this is PyTorch's [L*D, B, H].

import type { Activation, Backend, Buf } from '../backend/backend.js';
import { copy2d } from '../backend/generic.js';
import { gruBackward, gruForward } from '../cells/gru.js';
import { lstmBackward, lstmForward } from '../cells/lstm.js';
import { rnnBackward, rnnForward } from '../cells/rnn.js';
import { NormWorkspace, normCellBackward, normCellForward, type CellType } from '../cells/normalized.js';
import type { CellWeights } from '../cells/weights.js';
import { GateNorm, type NormKind, type NormOptions, type NormSite } from '../norm/norm.js';
import { WeightNorm } from '../norm/weightnorm.js';
import { Workspace, slots, type LayerSizes } from '../cells/workspace.js';
import { Rng } from '../util/rng.js';
import { Param, type HasParams } from './param.js';

export type RnnMode = 'LSTM' | 'GRU' | 'RNN_TANH' | 'RNN_RELU';

export interface RecurrentOptions {
  inputSize: number;
  hiddenSize: number;
  numLayers?: number;
  /** Two directions per layer, outputs concatenated [forward | backward] (PyTorch semantics). */
  bidirectional?: boolean;
  /** Dropout on the outputs of every layer but the last (training only), as in PyTorch. */
  dropout?: number;
  /** Use one dropout mask for all time steps of a sequence (variational dropout). */
  dropoutSameMask?: boolean;
  /** Dilation of each layer (a number for all layers, or one per layer; default 1). */
  dilation?: number | number[];
  /** Stride over time of each layer (a number for all layers, or one per layer; default 1). */
  stride?: number | number[];
  /** For the plain RNN: 'tanh' (default) or 'relu'. */
  nonlinearity?: Activation;
  /**
   * Normalization: 'layer' (layer norm of the gate pre-activations and the LSTM cell state), 'batch'
   * (recurrent batch norm, statistics per time step), 'weight' (weight norm of W_ih and W_hh), or options.
   */
  norm?: NormKind | NormOptions;
  /** Seed of the initialisation and dropout masks. */
  seed?: number;
}

export interface RecurrentOutput {
  /** Outputs of the last layer [outT, B, D*H], at `outOff` in `out`. Valid until the next forward. */
  out: Buf;
  outOff: number;
  /** Output steps: T, or fewer when layers have a stride. */
  outT: number;
  /** Final hidden states (layout: see the top of this file; [L*D, B, H] without dilation). */
  hN: Buf;
  /** Final cell states (LSTM only, else null). */
  cN: Buf | null;
}

export interface RecurrentGrads {
  /** Gradient w.r.t. the input sequence [T, B, I] (when requested). */
  dx: Buf | null;
  /** Gradients w.r.t. the initial states (same layout as hN). */
  dh0: Buf;
  dc0: Buf | null;
}

const gateCount: Record<RnnMode, number> = { LSTM: 4, GRU: 3, RNN_TANH: 1, RNN_RELU: 1 };
const cellType: Record<RnnMode, CellType> = { LSTM: 'lstm', GRU: 'gru', RNN_TANH: 'rnn', RNN_RELU: 'rnn' };

/** One direction of one layer: its weights, workspace and normalization. */
class Direction {
  readonly w: CellWeights;
  readonly ws: Workspace;
  readonly norm: GateNorm | null = null;
  readonly wn: WeightNorm[] = [];
  readonly nws: NormWorkspace;
  constructor(be: Backend, mode: RnnMode, suffix: string, readonly I: number, readonly H: number, readonly reverse: boolean,
    norm: NormOptions | null) {
    const G = gateCount[mode] * H;
    this.w = {
      wih: new Param(be, `weight_ih_${suffix}`, [G, I]),
      whh: new Param(be, `weight_hh_${suffix}`, [G, H]),
      bih: new Param(be, `bias_ih_${suffix}`, [G]),
      bhh: new Param(be, `bias_hh_${suffix}`, [G]),
    };
    this.ws = new Workspace(be, gateCount[mode], I, H, 1, mode === 'LSTM', mode === 'GRU');
    this.nws = new NormWorkspace(be, gateCount[mode], H);
    if (norm && (norm.kind === 'layer' || norm.kind === 'batch')) {
      const sites: [NormSite, number][] = [['x', G], ['h', G]];
      if (mode === 'LSTM') sites.push(['c', H]);
      this.norm = new GateNorm(be, norm, sites, suffix);
    }
  }

  /** The parameters an optimizer updates (weight norm replaces W by its g and v). */
  parameters(): Param[] {
    const w = this.w;
    const own = this.wn.length ? [...this.wn[0].parameters(), ...this.wn[1].parameters(), w.bih, w.bhh] : [w.wih, w.whh, w.bih, w.bhh];
    return this.norm ? [...own, ...this.norm.parameters()] : own;
  }
}

/** A layer: one or two directions, its dilation and stride, and the buffers around it. */
class Layer {
  readonly dirs: Direction[];
  /** Strided input [T_k, B, I] (stride > 1). */
  gathered: Buf | null = null;
  /** Concatenated output [T_k, B, 2H] (bidirectional). */
  cat: Buf | null = null;
  /** Per-direction gradient of the output [T_k, B, H] (bidirectional). */
  dySplit: Buf[] = [];
  /** Gradient w.r.t. the layer's (unstrided) input [T_in, B, I] (stride > 1). */
  dxFull: Buf | null = null;
  /** Dropout mask and dropped output [T_k, B, D*H] (for layers below the last). */
  mask: Buf | null = null;
  dropped: Buf | null = null;
  cap = 0;
  capIn = 0;
  /** Steps of input and of output in the last forward. */
  Tin = 0;
  T = 0;
  /** Where the layer's input was in the last forward. */
  x!: Buf;
  xOff = 0;
  /** The last output [B, H] in step-by-step inference (held between a strided layer's steps). */
  held: Buf | null = null;
  /** Valid steps [T_k, B] at this layer's rate (variable-length batches). */
  valid: Uint8Array | null = null;
  constructor(be: Backend, mode: RnnMode, k: number, readonly I: number, readonly H: number, D: number,
    readonly dilation: number, readonly stride: number, norm: NormOptions | null) {
    this.dirs = [new Direction(be, mode, `l${k}`, I, H, false, norm)];
    if (D === 2) this.dirs.push(new Direction(be, mode, `l${k}_reverse`, I, H, true, norm));
  }
}

export class RecurrentStack implements HasParams {
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numDirections: number;
  readonly dropout: number;
  readonly dropoutSameMask: boolean;
  readonly dilations: number[];
  readonly strides: number[];
  readonly layers: Layer[];
  readonly norm: NormOptions | null;
  private rng: Rng;
  private lengths: Int32Array | null = null;
  private B = 0;
  private T = 0;
  private train = false;
  private stateSize = 0;
  private hN!: Buf;
  private cN!: Buf;
  private dh0!: Buf;
  private dc0!: Buf;

  constructor(readonly be: Backend, readonly mode: RnnMode, opts: RecurrentOptions) {
    this.inputSize = opts.inputSize;
    this.hiddenSize = opts.hiddenSize;
    this.numLayers = opts.numLayers ?? 1;
    this.numDirections = opts.bidirectional ? 2 : 1;
    this.dropout = opts.dropout ?? 0;
    this.dropoutSameMask = opts.dropoutSameMask ?? false;
    for (const [k, v] of [['inputSize', this.inputSize], ['hiddenSize', this.hiddenSize], ['numLayers', this.numLayers]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`${mode}: ${k} must be a positive integer, got ${v}`);
    }
    if (!(this.dropout >= 0 && this.dropout < 1)) throw new Error(`${mode}: dropout must be in [0, 1), got ${this.dropout}`);
    const perLayer = (name: string, v: number | number[] | undefined): number[] => {
      const a = Array.isArray(v) ? v : Array(this.numLayers).fill(v ?? 1);
      if (a.length !== this.numLayers) throw new Error(`${mode}: ${name} has ${a.length} entries for ${this.numLayers} layers`);
      for (const d of a) if (!Number.isInteger(d) || d < 1) throw new Error(`${mode}: ${name} must be positive integers, got ${d}`);
      return a;
    };
    this.dilations = perLayer('dilation', opts.dilation);
    this.strides = perLayer('stride', opts.stride);
    const norm = typeof opts.norm === 'string' ? { kind: opts.norm } : opts.norm ?? null;
    if (norm && !['none', 'layer', 'batch', 'weight'].includes(norm.kind)) throw new Error(`${mode}: norm must be none, layer, batch or weight, got '${norm.kind}'`);
    this.norm = norm && norm.kind !== 'none' ? norm : null;
    this.rng = new Rng(opts.seed ?? 0);
    this.layers = [];
    const stdv = 1 / Math.sqrt(this.hiddenSize), D = this.numDirections;
    for (let k = 0; k < this.numLayers; k++) {
      const layer = new Layer(be, mode, k, k === 0 ? this.inputSize : D * this.hiddenSize, this.hiddenSize, D, this.dilations[k], this.strides[k], this.norm);
      for (const d of layer.dirs) {
        for (const p of Object.values(d.w)) p.uniform(this.rng, -stdv, stdv); // PyTorch's reset_parameters
        if (this.norm?.kind === 'weight') d.wn.push(new WeightNorm(be, d.w.wih), new WeightNorm(be, d.w.whh));
      }
      this.layers.push(layer);
    }
    this.allocStates(1);
  }

  /**
   * Parameters in PyTorch's order: per layer, per direction, weight_ih, weight_hh, bias_ih, bias_hh (with weight
   * norm: weight_ih_*_g, weight_ih_*_v, ... as torch.nn.utils.weight_norm names them), then any γ/β.
   */
  parameters(): Param[] {
    return this.layers.flatMap((l) => l.dirs.flatMap((d) => d.parameters()));
  }

  /** Non-trained state to save with the model: batch norm's population statistics, by name. */
  buffers(): Map<string, { shape: number[]; data: Float32Array | Float64Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array | Float64Array }>();
    this.layers.forEach((l, k) => l.dirs.forEach((d, j) => {
      for (const [n, b] of d.norm?.buffers(`l${k}${j ? '_reverse' : ''}`) ?? []) out.set(n, b);
    }));
    return out;
  }

  loadBuffers(get: (name: string) => ArrayLike<number> | undefined): void {
    this.layers.forEach((l, k) => l.dirs.forEach((d, j) => d.norm?.loadBuffers(`l${k}${j ? '_reverse' : ''}`, get)));
  }

  /** Training (batch statistics) or inference (population statistics) for batch norm. */
  private setTraining(train: boolean): void {
    for (const l of this.layers) for (const d of l.dirs) if (d.norm) d.norm.training = train;
  }

  get outputSize(): number {
    return this.numDirections * this.hiddenSize;
  }

  private get activation(): Activation {
    return this.mode === 'RNN_RELU' ? 'relu' : 'tanh';
  }

  /** Values in the state for batch B (see the layout at the top of this file). */
  stateLength(B: number): number {
    return this.dilations.reduce((s, d) => s + d, 0) * this.numDirections * B * this.hiddenSize;
  }

  private allocStates(B: number): void {
    const n = this.stateLength(B);
    for (const b of [this.hN, this.cN, this.dh0, this.dc0]) if (b) this.be.free(b);
    this.hN = this.be.alloc(n);
    this.cN = this.be.alloc(this.mode === 'LSTM' ? n : 0);
    this.dh0 = this.be.alloc(n);
    this.dc0 = this.be.alloc(this.mode === 'LSTM' ? n : 0);
    this.B = B;
    this.stateSize = n;
  }

  /** Seed the dropout masks (for repeatable or resumed runs). */
  get rngState(): number[] { return this.rng.getState(); }
  set rngState(s: number[]) { this.rng.setState(s); }

  /** Output steps for T input steps. */
  outputSteps(T: number): number {
    return this.strides.reduce((t, s) => Math.ceil(t / s), T);
  }

  /**
   * x: [T, B, inputSize] at xOff (kept by reference until backward). h0/c0: initial states or null for zeros.
   */
  forward(x: Buf, xOff: number, T: number, B: number, h0: Buf | null, c0: Buf | null, train: boolean,
    lengths: Int32Array | null = null): RecurrentOutput {
    const be = this.be, H = this.hiddenSize, D = this.numDirections, L = this.numLayers;
    if (!(Number.isInteger(T) && T >= 1 && Number.isInteger(B) && B >= 1)) throw new Error(`${this.mode}: T and B must be positive integers, got T=${T}, B=${B}`);
    if (x.length - xOff < T * B * this.inputSize) {
      throw new Error(`${this.mode}: input has ${x.length - xOff} values, expected [T=${T}, B=${B}, inputSize=${this.inputSize}] = ${T * B * this.inputSize}`);
    }
    if (B !== this.B) this.allocStates(B);
    const n = this.stateSize;
    if (h0 && h0.length !== n) throw new Error(`${this.mode}: h0 has ${h0.length} values, expected ${this.stateShape(B)} = ${n}`);
    if (c0 && this.mode === 'LSTM' && c0.length !== n) throw new Error(`${this.mode}: c0 has ${c0.length} values, expected ${this.stateShape(B)} = ${n}`);
    if (lengths) {
      if (lengths.length !== B) throw new Error(`${this.mode}: lengths has ${lengths.length} entries for a batch of ${B}`);
      for (const l of lengths) if (!(Number.isInteger(l) && l >= 0 && l <= T)) throw new Error(`${this.mode}: lengths must be integers in [0, ${T}], got ${l}`);
    }
    this.T = T; this.train = train; this.lengths = lengths;
    this.setTraining(train);
    for (const l of this.layers) for (const d of l.dirs) for (const wn of d.wn) wn.compute();
    let inp = x, inpOff = xOff, Tin = T, sOff = 0, rate = 1;
    for (let k = 0; k < L; k++) {
      const layer = this.layers[k], { stride: s, dilation: d, I } = layer;
      const Tk = Math.ceil(Tin / s);
      if (Tk % d !== 0) throw new Error(`${this.mode}: layer ${k} has dilation ${d} but runs ${Tk} steps; the steps must be a multiple of the dilation`);
      this.ensureLayer(layer, Tin, Tk, B);
      layer.Tin = Tin; layer.T = Tk;
      rate *= s;
      if (lengths) {
        if (!layer.valid || layer.valid.length < Tk * B) layer.valid = new Uint8Array(Tk * B);
        for (let t = 0; t < Tk; t++) for (let b = 0; b < B; b++) layer.valid[t * B + b] = t * rate < lengths[b] ? 1 : 0;
      }
      // stride: gather steps 0, s, 2s, ... into a contiguous [Tk, B, I]
      if (s > 1) { copy2d(be, Tk, B * I, inp, inpOff, s * B * I, layer.gathered!, 0, B * I); inp = layer.gathered!; inpOff = 0; }
      layer.x = inp; layer.xOff = inpOff;
      const sz: LayerSizes = { T: Tk / d, B: B * d, I, H };
      const dBH = d * B * H;
      for (const dir of layer.dirs) {
        const ws = dir.ws, sl = slots(sz.T, dir.reverse);
        ws.ensure(sz.T, sz.B);
        if (h0) be.copy(dBH, h0, sOff, ws.h, sl.init * dBH); else be.fill(dBH, 0, ws.h, sl.init * dBH);
        if (this.mode === 'LSTM') { if (c0) be.copy(dBH, c0, sOff, ws.c, sl.init * dBH); else be.fill(dBH, 0, ws.c, sl.init * dBH); }
        this.cellForward(dir, { ...sz, reverse: dir.reverse }, inp, inpOff, layer);
        be.copy(dBH, ws.h, sl.final * dBH, this.hN, sOff);
        if (this.mode === 'LSTM') be.copy(dBH, ws.c, sl.final * dBH, this.cN, sOff);
        sOff += dBH;
      }
      // the layer's output [Tk, B, D*H]
      const o0 = layer.dirs[0], o0Off = slots(sz.T, false).outputs * dBH;
      if (D === 1) { inp = o0.ws.h; inpOff = o0Off; }
      else {
        const o1 = layer.dirs[1];
        copy2d(be, Tk * B, H, o0.ws.h, o0Off, H, layer.cat!, 0, 2 * H);
        copy2d(be, Tk * B, H, o1.ws.h, slots(sz.T, true).outputs * dBH, H, layer.cat!, H, 2 * H);
        inp = layer.cat!; inpOff = 0;
      }
      if (train && this.dropout > 0 && k < L - 1) {
        this.fillMask(layer.mask!, Tk, B * D * H);
        be.mul(Tk * B * D * H, inp, inpOff, layer.mask!, 0, layer.dropped!, 0);
        inp = layer.dropped!; inpOff = 0;
      }
      Tin = Tk;
    }
    const last = this.layers[L - 1];
    const lastOut = D === 1 ? { out: last.dirs[0].ws.h, outOff: last.dilation * B * H } : { out: last.cat!, outOff: 0 };
    return { ...lastOut, outT: Tin, hN: this.hN, cN: this.mode === 'LSTM' ? this.cN : null };
  }

  /** Input steps per time the whole stack runs in phase: T must be a multiple of this for forward(). */
  get alignment(): number {
    let rate = 1, align = 1;
    for (let k = 0; k < this.numLayers; k++) {
      rate *= this.strides[k];
      const need = rate * this.dilations[k];
      align = (align * need) / gcd(align, need);
    }
    return align;
  }

  /**
   * One step of inference at absolute time `tau` (counted from the state's start), for generation one token at a
   * time whatever the dilation and stride. x: [B, inputSize]. h/c: the carried state (the layout of hN), read
   * and updated in place. A dilated layer takes the state of the sub-sequence tau_k mod d; a strided layer
   * runs only at its steps and otherwise holds its last output, as the training forward does.
   * Returns the top layer's output [B, D*H] (valid until the next call).
   */
  inferStep(x: Buf, xOff: number, B: number, h: Buf, c: Buf | null, tau: number): { out: Buf; outOff: number } {
    const be = this.be, H = this.hiddenSize, L = this.numLayers, D = this.numDirections;
    if (D !== 1) throw new Error(`${this.mode}: step-by-step inference needs a unidirectional stack`);
    const n = this.stateLength(B);
    if (h.length !== n || (this.mode === 'LSTM' && (!c || c.length !== n))) throw new Error(`${this.mode}: state has ${h.length} values, expected ${n}`);
    if (B !== this.B) this.allocStates(B);
    this.setTraining(false);
    this.lengths = null;
    for (const l of this.layers) for (const d of l.dirs) for (const wn of d.wn) wn.compute();
    let inp = x, inpOff = xOff, rate = 1, sOff = 0;
    for (let k = 0; k < L; k++) {
      const layer = this.layers[k], dir = layer.dirs[0], ws = dir.ws, d = layer.dilation, BH = B * H;
      rate *= layer.stride;
      if (tau % rate !== 0) break; // this layer and those above hold their outputs
      const j = (tau / rate) % d, blk = sOff + j * BH;
      this.ensureLayer(layer, 1, 1, B);
      ws.ensure(1, B);
      layer.T = 1;
      be.copy(BH, h, blk, ws.h, 0);
      if (c) be.copy(BH, c, blk, ws.c, 0);
      this.cellForward(dir, { T: 1, B, I: layer.I, H }, inp, inpOff, layer);
      be.copy(BH, ws.h, BH, h, blk);
      if (c) be.copy(BH, ws.c, BH, c, blk);
      if (!layer.held || layer.held.length < BH) layer.held = be.alloc(BH);
      be.copy(BH, ws.h, BH, layer.held, 0);
      inp = layer.held; inpOff = 0;
      sOff += d * BH;
    }
    const top = this.layers[L - 1];
    if (!top.held) throw new Error(`${this.mode}: inferStep must start at tau = 0`);
    return { out: top.held, outOff: 0 };
  }

  private stateShape(B: number): string {
    return this.dilations.every((d) => d === 1) ? `[${this.numLayers * this.numDirections}, ${B}, ${this.hiddenSize}]` : `sum over layers of [dilation*${B}, ${this.hiddenSize}] x ${this.numDirections}`;
  }

  private fillMask(mask: Buf, T: number, rowLen: number): void {
    const keep = 1 - this.dropout, inv = 1 / keep;
    const n = this.dropoutSameMask ? rowLen : T * rowLen;
    for (let i = 0; i < n; i++) mask[i] = this.rng.next() < keep ? inv : 0;
    this.be.hostWrote?.(mask);
    if (this.dropoutSameMask) for (let t = 1; t < T; t++) this.be.copy(rowLen, mask, 0, mask, t * rowLen);
  }

  private ensureLayer(layer: Layer, Tin: number, Tk: number, B: number): void {
    const be = this.be, H = this.hiddenSize, D = this.numDirections, n = Tk * B;
    if (n > layer.cap) {
      for (const b of [layer.gathered, layer.cat, layer.mask, layer.dropped, ...layer.dySplit]) if (b) be.free(b);
      layer.gathered = layer.stride > 1 ? be.alloc(n * layer.I) : null;
      layer.cat = D === 2 ? be.alloc(n * 2 * H) : null;
      layer.dySplit = D === 2 ? [be.alloc(n * H), be.alloc(n * H)] : [];
      layer.mask = this.dropout > 0 ? be.alloc(n * D * H) : null;
      layer.dropped = this.dropout > 0 ? be.alloc(n * D * H) : null;
      layer.cap = n;
    }
    if (layer.stride > 1 && Tin * B > layer.capIn) {
      if (layer.dxFull) be.free(layer.dxFull);
      layer.dxFull = be.alloc(Tin * B * layer.I);
      layer.capIn = Tin * B;
    }
  }

  /**
   * dy: gradient w.r.t. the outputs [outT, B, D*H]; dhN/dcN: gradients w.r.t. the final states (null = zero).
   * Accumulates into every parameter's grad.
   */
  backward(dy: Buf, dyOff: number, dhN: Buf | null, dcN: Buf | null, needDx: boolean): RecurrentGrads {
    if (this.T === 0) throw new Error(`${this.mode}: backward called before forward`);
    const be = this.be, { B } = this, H = this.hiddenSize, L = this.numLayers, D = this.numDirections;
    let g = dy, gOff = dyOff;
    let sEnd = this.stateSize;
    for (let k = L - 1; k >= 0; k--) {
      const layer = this.layers[k], { dilation: d, stride: s, I, T: Tk } = layer, dBH = d * B * H;
      const sz: LayerSizes = { T: Tk / d, B: B * d, I, H };
      const wantDx = k > 0 || needDx;
      // gradient w.r.t. each direction's output, contiguous [Tk, B, H]
      const dys: [Buf, number][] = D === 1 ? [[g, gOff]] : [[layer.dySplit[0], 0], [layer.dySplit[1], 0]];
      if (D === 2) for (let j = 0; j < 2; j++) copy2d(be, Tk * B, H, g, gOff + j * H, 2 * H, layer.dySplit[j], 0, H);
      let sOff = sEnd - D * dBH;
      sEnd = sOff;
      layer.dirs.forEach((dir, j) => {
        const ws = dir.ws, off = sOff + j * dBH;
        if (dhN) be.copy(dBH, dhN, off, ws.dhc, 0); else be.fill(dBH, 0, ws.dhc, 0);
        if (this.mode === 'LSTM') { if (dcN) be.copy(dBH, dcN, off, ws.dc, 0); else be.fill(dBH, 0, ws.dc, 0); }
        this.cellBackward(dir, { ...sz, reverse: dir.reverse }, layer.x, layer.xOff, dys[j][0], dys[j][1], wantDx, layer);
        if (j > 0 && wantDx) be.addTo(Tk * B * I, ws.dx, 0, layer.dirs[0].ws.dx, 0); // both directions read the input
        be.copy(dBH, ws.dhc, 0, this.dh0, off);
        if (this.mode === 'LSTM') be.copy(dBH, ws.dc, 0, this.dc0, off);
      });
      // the gradient w.r.t. the layer input is in the first direction's ws.dx (the second added into it)
      let dx = layer.dirs[0].ws.dx;
      if (s > 1 && wantDx) {
        // scatter back to the unstrided steps; the skipped steps get zero
        be.fill(layer.Tin * B * I, 0, layer.dxFull!, 0);
        copy2d(be, Tk, B * I, dx, 0, B * I, layer.dxFull!, 0, s * B * I);
        dx = layer.dxFull!;
      }
      if (k > 0 && this.train && this.dropout > 0) {
        const below = this.layers[k - 1];
        be.mul(below.T * B * D * H, dx, 0, below.mask!, 0, dx, 0);
      }
      g = dx; gOff = 0;
    }
    for (const l of this.layers) for (const d of l.dirs) for (const wn of d.wn) wn.backward();
    return { dx: needDx ? g : null, dh0: this.dh0, dc0: this.mode === 'LSTM' ? this.dc0 : null };
  }

  private normArgs(dir: Direction, layer: Layer) {
    const mask = this.lengths ? layer.valid!.subarray(0, layer.T * this.B) : null;
    return { be: this.be, cell: cellType[this.mode], act: this.activation, w: dir.w, ws: dir.ws, nws: dir.nws, norm: dir.norm, mask };
  }

  private cellForward(dir: Direction, s: LayerSizes, x: Buf, xOff: number, layer: Layer): void {
    if (dir.norm || this.lengths) return normCellForward(this.normArgs(dir, layer), s, x, xOff);
    switch (this.mode) {
      case 'LSTM': return lstmForward(this.be, dir.w, dir.ws, s, x, xOff);
      case 'GRU': return gruForward(this.be, dir.w, dir.ws, s, x, xOff);
      default: return rnnForward(this.be, this.activation, dir.w, dir.ws, s, x, xOff);
    }
  }

  private cellBackward(dir: Direction, s: LayerSizes, x: Buf, xOff: number, dy: Buf, dyOff: number, needDx: boolean, layer: Layer): void {
    if (dir.norm || this.lengths) return normCellBackward(this.normArgs(dir, layer), s, x, xOff, dy, dyOff, needDx);
    switch (this.mode) {
      case 'LSTM': return lstmBackward(this.be, dir.w, dir.ws, s, x, xOff, dy, dyOff, needDx);
      case 'GRU': return gruBackward(this.be, dir.w, dir.ws, s, x, xOff, dy, dyOff, needDx);
      default: return rnnBackward(this.be, this.activation, dir.w, dir.ws, s, x, xOff, dy, dyOff, needDx);
    }
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
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
