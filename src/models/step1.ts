// The batch-1 inference path of a CharLM (sampling one token at a time): the backend's step1 plan
// (Backend.step1Create) instead of CharLM.forward(ids, T = 1, B = 1), the general training path. No
// allocation and no argument checks per token, biases summed once, the state ping-ponged in place, and layer
// 0's input projection a table lookup.

import type { Step1Cell, Step1Plan, Step1Spec } from '../backend/backend.js';
import type { CharLM } from './charlm.js';

const step1Cell: Record<string, Step1Cell> = { lstm: 'lstm', gru: 'gru', rnn: 'rnn_tanh', rnn_relu: 'rnn_relu' };

/** Plain layers: one direction, no normalization, dilation or stride (what a Step1Spec describes). */
export function plainLayers(model: CharLM): boolean {
  const rnn = model.rnn;
  return rnn.norm === null && rnn.numDirections === 1 && rnn.dilations.every((d) => d === 1) && rnn.strides.every((s) => s === 1);
}

/** Whether the model has the batch-1 path: plain layers on a backend with step1. */
export function hasStep1(model: CharLM): boolean {
  const be = model.be;
  return !!(be.step1Create && be.step1Load && be.step1Run && be.step1State && be.step1Free) && plainLayers(model);
}

/** The spec of a model: its parameters' buffers, by reference. */
export function step1Spec(model: CharLM): Step1Spec {
  const { vocabSize: V, embedding: E, hidden: H, layers: L } = model.config;
  const p = (name: string) => {
    const q = model.params.get(name);
    if (!q) throw new Error(`step1: the model has no parameter ${name}`);
    return q.data;
  };
  const layers = [];
  for (let k = 0; k < L; k++) {
    layers.push({ wih: p(`rnn.weight_ih_l${k}`), whh: p(`rnn.weight_hh_l${k}`), bih: p(`rnn.bias_ih_l${k}`), bhh: p(`rnn.bias_hh_l${k}`) });
  }
  return {
    cell: step1Cell[model.config.cell], V, E, H, embedding: p('encoder.weight'), layers,
    decoder: p('decoder.weight'), decoderBias: model.params.get('decoder.bias')?.data ?? null,
  };
}

const plans = new WeakMap<CharLM, Step1Plan>();

/**
 * The model's plan with a fresh snapshot of its weights (made once per model, its weights loaded again at
 * every call: the weights may have changed since) and a zero state. Null when the model has no batch-1 path.
 */
export function step1Plan(model: CharLM): Step1Plan | null {
  if (!hasStep1(model)) return null;
  const be = model.be;
  let plan = plans.get(model);
  if (plan) be.step1Load!(plan);
  else plans.set(model, (plan = be.step1Create!(step1Spec(model))));
  be.step1State!(plan, null, null, false);
  return plan;
}
