// Shared by the backends' batch-1 inference plans (Backend.step1Create): checking a Step1Spec once, when
// the plan is made, so that the per-token step checks nothing but the token.

import type { Buf, Step1Cell, Step1Spec } from './backend.js';

/** Gates per hidden unit of each cell. */
export const step1Gates: Record<Step1Cell, number> = { lstm: 4, gru: 3, rnn_tanh: 1, rnn_relu: 1 };

/** Throws a clear error when a spec's buffers do not have the sizes its V, E, H and layers say. */
export function checkStep1Spec(spec: Step1Spec): { G: number; L: number } {
  const { cell, V, E, H, layers } = spec;
  const G = step1Gates[cell];
  if (G === undefined) throw new Error(`step1: unknown cell '${cell}' (expected lstm, gru, rnn_tanh or rnn_relu)`);
  for (const [k, v] of [['V', V], ['E', E], ['H', H], ['layers', layers.length]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`step1: ${k} must be a positive integer, got ${v}`);
  }
  const need = (what: string, b: Buf | null, n: number): void => {
    if (!b || b.length !== n) throw new Error(`step1: ${what} has ${b ? b.length : 'no'} values, expected ${n}`);
  };
  need('embedding', spec.embedding, V * E);
  layers.forEach((l, k) => {
    need(`weight_ih_l${k}`, l.wih, G * H * (k === 0 ? E : H));
    need(`weight_hh_l${k}`, l.whh, G * H * H);
    need(`bias_ih_l${k}`, l.bih, G * H);
    need(`bias_hh_l${k}`, l.bhh, G * H);
  });
  need('decoder.weight', spec.decoder, V * H);
  if (spec.decoderBias) need('decoder.bias', spec.decoderBias, V);
  return { G, L: layers.length };
}
