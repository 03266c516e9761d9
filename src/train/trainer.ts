// The training loop of the character LM: truncated BPTT over a batched stream, Adam or SGD, global
// gradient-norm clipping, validation at intervals, the best checkpoint kept.

import type { Backend } from '../backend/backend.js';
import type { Vocab } from '../data/vocab.js';
import { CharLM, type CharLMConfig } from '../models/charlm.js';
import { Adam, SGD, clipGradNorm, type Optimizer } from '../optim/optim.js';
import { BatchedStream } from './batches.js';
import { lastCheckpointPath, saveCheckpoint, syncCheckpointBuffers, type TrainState } from './checkpoint.js';
import { evaluateBatched, type EvalResult } from './evaluate.js';

export interface TrainOptions {
  batch: number;
  bptt: number;
  lr: number;
  clip: number;
  optimizer: 'adam' | 'sgd';
  /** Stop after this many minutes (0 = no limit). */
  minutes: number;
  /** Stop after this many passes over the data (0 = no limit). */
  epochs: number;
  /** Stop after this many optimizer steps (0 = no limit). */
  maxSteps: number;
  /** Validate every this many seconds (and at the end). */
  evalSeconds: number;
  seed: number;
  /** Where the best checkpoint goes (null: none). */
  out: string | null;
}

export interface Progress {
  step: number;
  epoch: number;
  loss: number;
  charsPerSec: number;
  seconds: number;
  /** Fraction of the budget (time, epochs or steps) used, 0..1. */
  fraction: number;
}

export interface TrainEvents {
  progress?(p: Progress): void;
  validated?(r: EvalResult & { step: number; best: boolean; seconds: number }): void;
}

export class Trainer {
  readonly model: CharLM;
  readonly optimizer: Optimizer;
  readonly train: BatchedStream;
  readonly valid: BatchedStream | null;
  state: TrainState = { step: 0, epoch: 0, position: 0, bestBpc: null, seconds: 0, chars: 0 };
  private stopRequested = false;

  constructor(readonly be: Backend, config: CharLMConfig, readonly vocab: Vocab, trainIds: Int32Array,
    validIds: Int32Array | null, readonly opts: TrainOptions, model?: CharLM) {
    this.model = model ?? new CharLM(be, config, opts.seed);
    const align = this.model.rnn.alignment;
    if (opts.bptt % align !== 0) throw new Error(`--bptt ${opts.bptt} must be a multiple of ${align} (the product of the layers' strides and dilations)`);
    const params = this.model.parameters();
    this.optimizer = opts.optimizer === 'sgd' ? new SGD(be, params, { lr: opts.lr }) : new Adam(be, params, { lr: opts.lr });
    this.train = new BatchedStream(trainIds, opts.batch);
    this.valid = validIds && validIds.length >= 2 * opts.batch ? new BatchedStream(validIds, opts.batch) : null;
  }

  /** Ask the loop to stop after the current step (e.g. on SIGINT). */
  stop(): void {
    this.stopRequested = true;
  }

  /** One optimizer step on the next batch; returns the mean loss (nats). */
  step(): number {
    const { bptt, batch, clip } = this.opts;
    const align = this.model.rnn.alignment; // dilated / strided layers run whole multiples of this
    if (this.train.steps(this.state.position, bptt) < align) {
      this.state.position = 0;
      this.state.epoch++;
      this.model.resetState(batch);
    }
    const i = this.state.position, T = this.train.steps(i, bptt) - (this.train.steps(i, bptt) % align);
    this.optimizer.zeroGrad();
    this.model.forward(this.train.input(i, T), T, batch, true);
    const loss = this.model.backward(this.train.target(i, T)); // NaN on a deferred backend: see run()
    if (clip > 0) clipGradNorm(this.be, this.model.parameters(), clip);
    this.optimizer.step();
    this.state.position += T;
    this.state.step++;
    this.state.chars += T * batch;
    return loss;
  }

  /** Validation bpc; the carried training state is kept (copied aside on the backend). */
  async validate(): Promise<EvalResult | null> {
    if (!this.valid) return null;
    const be = this.be, m = this.model;
    const h = be.alloc(m.h.length), c = be.alloc(m.c.length);
    be.copy(m.h.length, m.h, 0, h, 0);
    be.copy(m.c.length, m.c, 0, c, 0);
    const r = await evaluateBatched(m, this.valid, this.opts.bptt);
    m.resetState(this.opts.batch);
    be.copy(m.h.length, h, 0, m.h, 0);
    be.copy(m.c.length, c, 0, m.c, 0);
    be.free(h); be.free(c);
    return r;
  }

  async save(file: string): Promise<void> {
    this.state.rng = this.model.dropoutRngState;
    await syncCheckpointBuffers(this.model, this.optimizer);
    saveCheckpoint(file, this.model, this.vocab, this.state, this.optimizer);
  }

  private pendingLoss: { loss: Promise<number>; n: number } | null = null;

  /**
   * One step and its mean loss. On a deferred backend (webgpu) the loss is the one value that comes back per
   * step; with `pipelined`, the step is submitted and the loss returned is the previous step's, so that the
   * device runs step k while the host records step k + 1 (call drain() before reading anything else).
   */
  async stepAsync(pipelined = false): Promise<number> {
    const chars = this.state.chars, loss = this.step();
    if (!this.be.deferred || !this.be.takeLoss) return loss;
    const cur = { loss: this.be.takeLoss(), n: this.state.chars - chars };
    const prev = pipelined ? this.pendingLoss ?? cur : cur;
    this.pendingLoss = pipelined && prev !== cur ? cur : null;
    return (await prev.loss) / prev.n;
  }

  /** Wait for the last pipelined step: its loss, or null when no step is pending. */
  async drain(): Promise<number | null> {
    const p = this.pendingLoss;
    this.pendingLoss = null;
    return p ? (await p.loss) / p.n : null;
  }

  /**
   * Train until the time, epoch or step budget is used (or stop() is called). With `out`, the best checkpoint
   * goes there and the latest state (for --resume) to `<stem>.last.safetensors`, at every validation and at the end.
   * Async only to give the event loop a turn every ~100 ms, so that SIGINT/SIGTERM handlers can call stop().
   */
  async run(events: TrainEvents = {}): Promise<TrainState> {
    const { minutes, epochs, maxSteps, evalSeconds, out } = this.opts;
    const last = out ? lastCheckpointPath(out) : null;
    if (minutes <= 0 && epochs <= 0 && maxSteps <= 0) throw new Error('training needs a budget: --minutes, --epochs or --steps');
    const t0 = performance.now() - this.state.seconds * 1000;
    let lastEval = performance.now(), lastReport = 0, chars0 = this.state.chars, tRate = performance.now();
    let rate = 0, loss = 0, lastYield = performance.now();
    const fraction = (): number => Math.max(
      minutes > 0 ? this.state.seconds / (minutes * 60) : 0,
      epochs > 0 ? (this.state.epoch + this.state.position / this.train.rows) / epochs : 0,
      maxSteps > 0 ? this.state.step / maxSteps : 0);
    const doValidate = async (): Promise<void> => {
      await this.drain();
      const v0 = performance.now();
      const r = await this.validate();
      lastEval = performance.now();
      this.state.validSeconds = (this.state.validSeconds ?? 0) + (lastEval - v0) / 1000;
      if (!r) return;
      const best = this.state.bestBpc === null || r.bpc < this.state.bestBpc;
      if (best) this.state.bestBpc = r.bpc;
      if (best && out) await this.save(out);
      if (last) await this.save(last);
      events.validated?.({ ...r, step: this.state.step, best, seconds: this.state.seconds });
      tRate = performance.now(); chars0 = this.state.chars; // do not count validation time in chars/s
    };
    if (this.state.step === 0) this.model.resetState(this.opts.batch);
    while (!this.stopRequested && fraction() < 1) {
      loss = await this.stepAsync(true);
      const now = performance.now();
      this.state.seconds = (now - t0) / 1000;
      if (now - tRate > 2000) { rate = (this.state.chars - chars0) / ((now - tRate) / 1000); tRate = now; chars0 = this.state.chars; }
      if (now - lastReport > 250) {
        lastReport = now;
        events.progress?.({ step: this.state.step, epoch: this.state.epoch, loss, charsPerSec: rate || (this.state.chars - chars0) / ((now - tRate) / 1000), seconds: this.state.seconds, fraction: Math.min(1, fraction()) });
      }
      if (evalSeconds > 0 && (now - lastEval) / 1000 >= evalSeconds && fraction() < 1) await doValidate();
      if (now - lastYield > 100) { await new Promise<void>((r) => setImmediate(r)); lastYield = performance.now(); }
    }
    loss = (await this.drain()) ?? loss;
    if (last) await this.save(last); // first, so that an interrupt is saved before the (possibly long) validation
    await doValidate();
    if (!this.valid && out) await this.save(out);
    return this.state;
  }
}
