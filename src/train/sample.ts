// Sampling with temperature: p_i ∝ exp(log q_i / T) = softmax(logits / T), one token at a time with the
// state carried. No allocation per token.

import type { CharLM } from '../models/charlm.js';
import { Rng } from '../util/rng.js';

export interface SampleOptions {
  /** Ids fed to the model before sampling (at least one). */
  prime: Int32Array;
  length: number;
  temperature: number;
  seed?: number;
}

/** Yields `length` sampled ids. */
export function* sampleIds(model: CharLM, opts: SampleOptions): Generator<number> {
  const { prime, length, temperature } = opts;
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new Error(`temperature must be > 0, got ${temperature}`);
  if (prime.length < 1) throw new Error('sampling needs a prime of at least one token');
  const V = model.config.vocabSize;
  const rng = new Rng(opts.seed ?? 1);
  const probs = new Float64Array(V);
  const one = new Int32Array(1);
  model.resetState(1);
  let logits = model.forward(prime, prime.length, 1, false);
  let off = (prime.length - 1) * V;
  for (let k = 0; k < length; k++) {
    let mx = -Infinity;
    for (let j = 0; j < V; j++) mx = Math.max(mx, logits[off + j]);
    let sum = 0;
    for (let j = 0; j < V; j++) { const e = Math.exp((logits[off + j] - mx) / temperature); probs[j] = e; sum += e; }
    let u = rng.next() * sum, id = V - 1;
    for (let j = 0; j < V; j++) { u -= probs[j]; if (u < 0) { id = j; break; } }
    yield id;
    one[0] = id;
    logits = model.forward(one, 1, 1, false);
    off = 0;
  }
}
