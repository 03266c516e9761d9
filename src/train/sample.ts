// Sampling with temperature: p_i ∝ exp(log q_i / T) = softmax(logits / T), one token at a time with the
// state carried. No allocation per token.

import type { Buf } from '../backend/backend.js';
import type { CharLM } from '../models/charlm.js';
import { plainLayers, step1Plan, step1Spec } from '../models/step1.js';
import { Rng } from '../util/rng.js';

export interface SampleOptions {
  /** Ids fed to the model before sampling (at least one). */
  prime: Int32Array;
  length: number;
  temperature: number;
  seed?: number;
  /**
   * 'auto' (default): the batch-1 path (src/models/step1.ts) where the model and backend have it, else
   * 'general': CharLM.forward one token at a time (the training path; the same results to float32 rounding).
   */
  path?: 'auto' | 'general';
  /** Called with each step's logits (V values from `offset`) before a token is drawn from them. */
  onLogits?: (logits: ArrayLike<number>, offset: number) => void;
}

/** A token drawn from softmax(logits[off..off+V) / temperature) with one draw of rng. */
function draw(logits: Buf, off: number, V: number, temperature: number, rng: Rng, probs: Float64Array): number {
  let mx = -Infinity;
  for (let j = 0; j < V; j++) mx = Math.max(mx, logits[off + j]);
  let sum = 0;
  for (let j = 0; j < V; j++) { const e = Math.exp((logits[off + j] - mx) / temperature); probs[j] = e; sum += e; }
  let u = rng.next() * sum, id = V - 1;
  for (let j = 0; j < V; j++) { u -= probs[j]; if (u < 0) { id = j; break; } }
  return id;
}

function checkOptions(opts: SampleOptions): void {
  if (!(opts.temperature > 0) || !Number.isFinite(opts.temperature)) throw new Error(`temperature must be > 0, got ${opts.temperature}`);
  if (opts.prime.length < 1) throw new Error('sampling needs a prime of at least one token');
}

/** Yields `length` sampled ids (immediate backends; sampleIdsAsync works on all). */
export function* sampleIds(model: CharLM, opts: SampleOptions): Generator<number> {
  const { prime, length, temperature } = opts;
  if (model.be.deferred) throw new Error(`sampleIds: the ${model.be.name} backend computes later; use sampleIdsAsync`);
  checkOptions(opts);
  const V = model.config.vocabSize;
  const rng = new Rng(opts.seed ?? 1);
  const probs = new Float64Array(V);
  const one = new Int32Array(1);
  const onLogits = opts.onLogits;
  model.resetState(1);
  const plan = (opts.path ?? 'auto') === 'auto' ? step1Plan(model) : null;
  if (plan) {
    // the batch-1 path: its state is copied back into the model's at the end, as the general path leaves it
    const be = model.be;
    for (let r = 0; r < prime.length; r++) {
      const id = prime[r];
      if (!(id >= 0 && id < V)) throw new Error(`Embedding: id ${id} at position ${r} is outside [0, ${V})`);
    }
    try {
      let logits: Buf = model.h;
      for (let r = 0; r < prime.length; r++) logits = be.step1Run!(plan, prime[r]);
      for (let k = 0; k < length; k++) {
        onLogits?.(logits, 0);
        const id = draw(logits, 0, V, temperature, rng, probs);
        yield id;
        logits = be.step1Run!(plan, id);
      }
    } finally {
      be.step1State!(plan, model.h, model.config.cell === 'lstm' ? model.c : null, true);
    }
    return;
  }
  let logits = model.forward(prime, prime.length, 1, false);
  let off = (prime.length - 1) * V;
  for (let k = 0; k < length; k++) {
    onLogits?.(logits, off);
    const id = draw(logits, off, V, temperature, rng, probs);
    yield id;
    one[0] = id;
    logits = model.forward(one, 1, 1, false);
    off = 0;
  }
}

/**
 * sampleIds for any backend, including the deferred ones (webgpu), where the logits live on the device:
 * plain models there sample entirely on the device (Backend.sampleOnDevice: one read for all the tokens,
 * drawn with the same generator as sampleIds), others read each step's logits back. On the immediate
 * backends this is sampleIds.
 */
export async function* sampleIdsAsync(model: CharLM, opts: SampleOptions): AsyncGenerator<number> {
  const be = model.be;
  if (!be.deferred) { yield* sampleIds(model, opts); return; }
  const { prime, length, temperature } = opts;
  checkOptions(opts);
  const V = model.config.vocabSize, rng = new Rng(opts.seed ?? 1);
  model.resetState(1);
  if (be.sampleOnDevice && plainLayers(model) && !opts.onLogits) {
    const u = Float32Array.from({ length }, () => rng.next());
    const ids = await be.sampleOnDevice(step1Spec(model), prime, u, temperature, model.h, model.config.cell === 'lstm' ? model.c : null);
    for (const id of ids) yield id;
    return;
  }
  const probs = new Float64Array(V), one = new Int32Array(1);
  let logits = model.forward(prime, prime.length, 1, false);
  let off = (prime.length - 1) * V;
  for (let k = 0; k < length; k++) {
    await be.syncHost?.([logits]);
    opts.onLogits?.(logits, off);
    const id = draw(logits, off, V, temperature, rng, probs);
    yield id;
    one[0] = id;
    logits = model.forward(one, 1, 1, false);
    off = 0;
  }
}
