// A stack of Conv1d layers, each followed by ReLU, that keeps the sequence length ('same' or 'causal'
// padding): the temporal-convolution encoder of the baselines. Dilations double per layer in a dilated
// stack (1, 2, 4, ...), so the receptive field grows exponentially with depth (WaveNet / TCN). With one layer
// of kernel k and dilation 1 it is the fixed-window MLP's first layer (k consecutive inputs, concatenated,
// through one linear map).
// Layers after the first are residual (TCN-style): y_k = ReLU(conv_k(y_{k-1})) + y_{k-1}, which keeps deep
// dilated stacks trainable. Parameter names: `0.weight`, `0.bias`, `2.weight`, ... (nn.Sequential numbering).

import type { Backend, Buf } from '../backend/backend.js';
import { Conv1d } from '../layers/conv1d.js';
import { Param, type HasParams } from '../layers/param.js';
import type { Rng } from '../util/rng.js';

export interface ConvStackOptions {
  inputSize: number;
  channels: number;
  kernelSize: number;
  /** Dilation of each layer. */
  dilations: number[];
  padding: 'same' | 'causal';
}

export class ConvStack implements HasParams {
  readonly convs: Conv1d[];
  readonly params: Map<string, Param>;
  private acts: Buf[] = [];
  private grad: Buf;
  private relu: Buf;
  private cap = 0;
  private T = 0;
  private B = 0;

  constructor(readonly be: Backend, readonly opts: ConvStackOptions, rng: Rng) {
    if (opts.padding === 'same' && opts.kernelSize % 2 === 0) throw new Error(`ConvStack: 'same' padding needs an odd kernel size, got ${opts.kernelSize}`);
    this.convs = opts.dilations.map((d, k) => new Conv1d(be, {
      inChannels: k === 0 ? opts.inputSize : opts.channels, outChannels: opts.channels, kernelSize: opts.kernelSize, dilation: d, padding: opts.padding,
    }, rng));
    this.params = new Map();
    this.convs.forEach((c, k) => { for (const p of c.parameters()) this.params.set(`${2 * k}.${p.name}`, p); });
    this.grad = be.alloc(0);
    this.relu = be.alloc(0);
  }

  parameters(): Param[] {
    return [...this.params.values()];
  }

  /** Steps of past input one output step depends on, itself included. */
  get receptiveField(): number {
    return 1 + this.opts.dilations.reduce((s, d) => s + d * (this.opts.kernelSize - 1), 0);
  }

  /**
   * x [T, B, inputSize] -> [T, B, channels] (owned by the stack, valid until the next forward).
   * With lens (padded batches), every layer's outputs past lens[b] are zeroed, so that the next layer sees
   * zero padding exactly as an unpadded sequence would (and, through ReLU's backward, they get no gradient).
   */
  forward(x: Buf, xOff: number, T: number, B: number, lens: Int32Array | null = null): Buf {
    const n = T * B * this.opts.channels;
    if (this.cap < n) {
      for (const a of this.acts) this.be.free(a);
      this.be.free(this.grad); this.be.free(this.relu);
      this.acts = this.convs.map(() => this.be.alloc(n));
      this.grad = this.be.alloc(n); this.relu = this.be.alloc(n);
      this.cap = n;
    }
    this.T = T; this.B = B;
    let inp = x, off = xOff;
    this.convs.forEach((c, k) => {
      c.forward(inp, off, T, B, this.acts[k], 0);
      this.be.rnnCellForward('relu', T * B, this.opts.channels, this.acts[k], 0);
      if (lens) for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) if (t >= lens[b]) this.be.fill(this.opts.channels, 0, this.acts[k], (t * B + b) * this.opts.channels);
      if (k > 0) this.be.addTo(T * B * this.opts.channels, inp, off, this.acts[k], 0); // residual
      inp = this.acts[k]; off = 0;
    });
    return this.acts[this.acts.length - 1];
  }

  /** dy [T, B, channels] -> accumulates gradients; returns dx [T, B, inputSize] when needDx. */
  backward(dy: Buf, dyOff: number, needDx: boolean): Buf | null {
    const { T, B } = this, H = this.opts.channels;
    let g = dy, gOff = dyOff;
    for (let k = this.convs.length - 1; k >= 0; k--) {
      // ReLU's derivative from its output: with the residual, the ReLU output is acts[k] - acts[k-1]
      if (k > 0) {
        this.be.copy(T * B * H, this.acts[k], 0, this.relu, 0);
        this.be.scale(T * B * H, -1, this.relu, 0);
        this.be.addTo(T * B * H, this.acts[k - 1], 0, this.relu, 0);
        this.be.scale(T * B * H, -1, this.relu, 0);
        this.be.rnnCellBackward('relu', T * B, H, this.relu, 0, g, gOff, this.grad, 0);
      } else this.be.rnnCellBackward('relu', T * B, H, this.acts[k], 0, g, gOff, this.grad, 0);
      const dx = this.convs[k].backward(this.grad, 0, k > 0 || needDx);
      if (k === 0) return dx;
      this.be.addTo(T * B * H, g, gOff, dx!, 0); // the residual path
      g = dx!; gOff = 0;
    }
    return null;
  }
}
