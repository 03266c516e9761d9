// Bits per character and perplexity.

import type { CharLM } from '../models/charlm.js';
import { deferredLoss } from '../backend/sync.js';
import { BatchedStream } from './batches.js';

export interface EvalResult {
  /** Bits per predicted token (byte or character). */
  bpc: number;
  /** Per-token perplexity, 2^bpc. */
  perplexity: number;
  /** Tokens predicted. */
  chars: number;
}

export const result = (nats: number, n: number): EvalResult => {
  const bpc = nats / n / Math.LN2;
  return { bpc, perplexity: 2 ** bpc, chars: n };
};

/**
 * The PyTorch char-LM convention: the ids read as one stream from a zero state, every id after the first
 * predicted from those before it. Runs in chunks of T steps at batch 1, carrying the state.
 */
export async function evaluateStream(model: CharLM, ids: Int32Array, T = 256): Promise<EvalResult> {
  if (ids.length < 2) throw new Error(`need at least 2 tokens to evaluate, got ${ids.length}`);
  model.resetState(1);
  let nats = 0;
  for (let i = 0; i + 1 < ids.length; i += T) {
    const t = Math.min(T, ids.length - 1 - i);
    model.forward(ids.subarray(i, i + t), t, 1, false);
    nats += model.loss(ids.subarray(i + 1, i + 1 + t)) * t;
  }
  return result(await deferredLoss(model.be, nats), ids.length - 1);
}

/**
 * Faster validation used during training: B parallel columns (each from a zero state), T steps at a time.
 * With B = 1 it equals evaluateStream.
 */
export async function evaluateBatched(model: CharLM, stream: BatchedStream, T: number): Promise<EvalResult> {
  model.resetState(stream.B);
  let nats = 0, n = 0;
  const align = model.rnn.alignment;
  for (let i = 0; i < stream.rows - 1; i += T) {
    const t = stream.steps(i, T) - (stream.steps(i, T) % align);
    if (t === 0) break;
    model.forward(stream.input(i, t), t, stream.B, false);
    nats += model.loss(stream.target(i, t)) * t * stream.B;
    n += t * stream.B;
  }
  return result(await deferredLoss(model.be, nats), n);
}
