// The fixed-window MLP language model: see ConvLM (kind 'window') in ./conv.ts.

import type { Backend } from '../backend/backend.js';
import { ConvLM, convLMConfig } from './conv.js';

/** A window MLP LM over the `kernel` previous characters, with one hidden ReLU layer of `hidden` units. */
export function windowLM(be: Backend, vocabSize: number, o: { embedding?: number; hidden?: number; kernel?: number } = {}, seed = 1): ConvLM {
  return new ConvLM(be, convLMConfig('window', vocabSize, o), seed);
}
