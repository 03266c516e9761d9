// The standard workload (shared bench/WORKLOAD.md): a byte-level LM, V = 256, E = 64, Adam lr 2e-3,
// global clip 5, mean cross-entropy over B*T, truncated BPTT with the state carried.
// Training throughput = B*T*steps / seconds after 3 warm-up steps, over >= 20 steps and >= S seconds.
// Sampling: the M-lstm model at batch 1, 500 tokens, temperature 0.8, step by step.

import type { Backend } from '../backend/backend.js';
import { CharLM, type CellKind } from '../models/charlm.js';
import { sampleIds, sampleIdsAsync } from '../train/sample.js';
import { Trainer } from '../train/trainer.js';
import { ByteVocab } from '../data/vocab.js';
import type { NormKind } from '../norm/norm.js';

export interface WorkloadConfig { cell: CellKind; L: number; H: number; B: number; T: number }

export const WORKLOADS: Record<string, WorkloadConfig> = {
  'S-lstm': { cell: 'lstm', L: 1, H: 128, B: 32, T: 64 },
  'S-gru': { cell: 'gru', L: 1, H: 128, B: 32, T: 64 },
  'S-rnn': { cell: 'rnn', L: 1, H: 128, B: 32, T: 64 },
  'M-lstm': { cell: 'lstm', L: 2, H: 512, B: 64, T: 128 },
  'M-gru': { cell: 'gru', L: 2, H: 512, B: 64, T: 128 },
  // for GPUs (issue #7's large config): about 4 TFLOP per step, minutes per step on a CPU
  'L-lstm': { cell: 'lstm', L: 3, H: 1024, B: 128, T: 256 },
};

export const BENCH_CONFIGS = [...Object.keys(WORKLOADS), 'sample'];

/** What `--config all` runs: L-lstm only on a device backend. */
export const defaultConfigs = (be: Backend): string[] => BENCH_CONFIGS.filter((c) => c !== 'L-lstm' || be.deferred);

export interface BenchResult {
  config: string;
  threads: number;
  backend: string;
  norm?: NormKind;
  chars_per_s?: number;
  tokens_per_s?: number;
  steps?: number;
  seconds: number;
}

/** Train on `data` (bytes) with the named workload; returns training chars/s. */
export async function benchTrain(be: Backend, name: string, data: Int32Array, minSeconds = 15, minSteps = 20, norm: NormKind = 'none'): Promise<BenchResult> {
  const w = WORKLOADS[name];
  if (!w) throw new Error(`unknown bench config '${name}' (expected one of ${BENCH_CONFIGS.join(', ')})`);
  const trainer = new Trainer(be, { cell: w.cell, vocabSize: 256, embedding: 64, hidden: w.H, layers: w.L, dropout: 0, norm },
    new ByteVocab(), data, null, { batch: w.B, bptt: w.T, lr: 2e-3, clip: 5, optimizer: 'adam', minutes: 0, epochs: 0, maxSteps: 0, evalSeconds: 0, seed: 1, out: null });
  trainer.model.resetState(w.B);
  // stepAsync: on a deferred backend (webgpu) each step's loss comes back, so the time is the device's
  for (let i = 0; i < 3; i++) await trainer.stepAsync();
  const c0 = trainer.state.chars, t0 = performance.now();
  let steps = 0, secs = 0;
  while (steps < minSteps || secs < minSeconds) {
    const loss = await trainer.stepAsync(true); // deferred backends: the previous step's loss (see stepAsync)
    if (!Number.isFinite(loss)) throw new Error(`${name}: loss became ${loss}`);
    steps++;
    secs = (performance.now() - t0) / 1000;
  }
  const last = await trainer.drain();
  if (last !== null && !Number.isFinite(last)) throw new Error(`${name}: loss became ${last}`);
  secs = (performance.now() - t0) / 1000;
  return { config: name, threads: be.threads, backend: be.name, ...(norm !== 'none' ? { norm } : {}), chars_per_s: (trainer.state.chars - c0) / secs, steps, seconds: secs };
}

/**
 * Sample 500 tokens at batch 1 from the M-lstm model; returns tokens/s, the median of 3 timed runs after
 * a second of warm-up (WebAssembly reaches full speed only once the optimizing compiler has run).
 */
export async function benchSample(be: Backend, tokens = 500): Promise<BenchResult> {
  const w = WORKLOADS['M-lstm'];
  const model = new CharLM(be, { cell: w.cell, vocabSize: 256, embedding: 64, hidden: w.H, layers: w.L, dropout: 0 }, 1);
  const prime = Int32Array.of(10);
  const t0 = performance.now();
  while (performance.now() - t0 < 1000) for await (const _ of sampleIdsAsync(model, { prime, length: 50, temperature: 0.8, seed: 1 })) { /* warm-up */ }
  const rates: number[] = [];
  let secs = 0;
  for (let run = 0; run < 3; run++) {
    const t1 = performance.now();
    let n = 0;
    if (be.deferred) for await (const _ of sampleIdsAsync(model, { prime, length: tokens, temperature: 0.8, seed: 2 + run })) n++;
    else for (const _ of sampleIds(model, { prime, length: tokens, temperature: 0.8, seed: 2 + run })) n++;
    const s = (performance.now() - t1) / 1000;
    secs += s;
    rates.push(n / s);
  }
  rates.sort((x, y) => x - y);
  return { config: 'sample', threads: be.threads, backend: be.name, tokens_per_s: rates[1], seconds: secs };
}
