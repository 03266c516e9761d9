// Checkpoints of the character LM as safetensors files.
//
// Tensors: the model's parameters under PyTorch's names (encoder.weight, rnn.weight_ih_l0, ...,
// decoder.weight, decoder.bias), which is the layout of pytorch/examples' word_language_model, plus the
// optimizer's state as optimizer.<slot>.<name>. __metadata__ (strings): format, rnn_type, vocab ('bytes' or
// 'chars'), vocab_json, config (JSON), train_state (JSON: step, epoch, position, RNG states, best bpc).
// A file with only rnn_type/vocab metadata (a PyTorch export) loads too: sizes are read from the shapes.

import type { Backend } from '../backend/backend.js';
import { ByteVocab, vocabFromJSON, type Vocab } from '../data/vocab.js';
import { encodeSafetensors, readSafetensorsFile, writeFileAtomic, type Tensor } from '../io/safetensors.js';
import { CharLM, cellMode, type CellKind, type CharLMConfig } from '../models/charlm.js';
import type { Optimizer } from '../optim/optim.js';

export const FORMAT = 'rnnkit-charlm/1';

export interface TrainState {
  step: number;
  epoch: number;
  /** Row of the batched training stream where the next batch starts. */
  position: number;
  bestBpc: number | null;
  seconds: number;
  chars: number;
  rng?: number[][];
  args?: Record<string, unknown>;
}

export interface LoadedCheckpoint {
  model: CharLM;
  vocab: Vocab;
  trainState: TrainState | null;
  /** Optimizer tensors by name (optimizer.<slot>.<param>), for resuming. */
  optimizer: Map<string, Tensor>;
  optimizerStep: number;
  metadata: Record<string, string>;
}

const rnnTypeOf = (cell: CellKind): string => cellMode[cell];
const cellOfRnnType: Record<string, CellKind> = { LSTM: 'lstm', GRU: 'gru', RNN_TANH: 'rnn', RNN_RELU: 'rnn_relu' };

export function saveCheckpoint(file: string, model: CharLM, vocab: Vocab, trainState?: TrainState, optimizer?: Optimizer): void {
  const tensors = new Map<string, { shape: number[]; data: ArrayLike<number> }>();
  for (const [name, p] of model.params) tensors.set(name, { shape: p.shape, data: p.data });
  let optimizerStep = 0;
  if (optimizer) {
    const st = optimizer.state();
    optimizerStep = st.step;
    const names = [...model.params.keys()];
    for (const [slot, bufs] of Object.entries(st.slots)) {
      bufs.forEach((b, i) => tensors.set(`optimizer.${slot}.${names[i]}`, { shape: model.params.get(names[i])!.shape, data: b }));
    }
  }
  const metadata: Record<string, string> = {
    format: FORMAT,
    rnn_type: rnnTypeOf(model.config.cell),
    vocab: vocab.kind,
    vocab_json: JSON.stringify(vocab.toJSON()),
    config: JSON.stringify(model.config),
    optimizer_step: String(optimizerStep),
  };
  if (trainState) metadata.train_state = JSON.stringify(trainState);
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

function parseJson(file: string, key: string, s: string): any {
  try {
    return JSON.parse(s);
  } catch {
    throw new Error(`bad checkpoint '${file}': __metadata__.${key} is not valid JSON`);
  }
}

/** Load a checkpoint written by saveCheckpoint, or a PyTorch word_language_model export (see above). */
export function loadCheckpoint(file: string, be: Backend): LoadedCheckpoint {
  const { tensors, metadata } = readSafetensorsFile(file);
  const fail = (why: string): never => { throw new Error(`bad checkpoint '${file}': ${why}`); };
  const shapeOf = (name: string): number[] => tensors.get(name)?.shape ?? fail(`missing tensor '${name}'`);
  let config: CharLMConfig;
  if (metadata.config) {
    config = parseJson(file, 'config', metadata.config);
    const ok = config && typeof config === 'object' && config.cell in cellMode &&
      [config.vocabSize, config.embedding, config.hidden, config.layers].every((v) => Number.isInteger(v) && v > 0 && v < 1e6);
    if (!ok) fail('__metadata__.config does not describe a model (cell, vocabSize, embedding, hidden, layers)');
    config.dropout = typeof config.dropout === 'number' && config.dropout >= 0 && config.dropout < 1 ? config.dropout : 0;
  } else {
    const rt = metadata.rnn_type;
    if (!rt) fail('no __metadata__.config or __metadata__.rnn_type: not an rnnkit or word_language_model checkpoint');
    const cell = cellOfRnnType[rt] ?? fail(`unknown rnn_type '${rt}' (expected LSTM, GRU, RNN_TANH or RNN_RELU)`);
    const enc = shapeOf('encoder.weight');
    const whh = shapeOf('rnn.weight_hh_l0');
    if (enc.length !== 2 || whh.length !== 2) fail('encoder.weight and rnn.weight_hh_l0 must be matrices');
    let layers = 0;
    while (tensors.has(`rnn.weight_ih_l${layers}`)) layers++;
    config = { cell, vocabSize: enc[0], embedding: enc[1], hidden: whh[1], layers, dropout: 0 };
  }
  let vocab: Vocab;
  if (metadata.vocab_json) vocab = vocabFromJSON(parseJson(file, 'vocab_json', metadata.vocab_json));
  else if (!metadata.vocab || metadata.vocab === 'bytes') vocab = new ByteVocab();
  else fail(`vocab '${metadata.vocab}' needs a vocab_json entry`);
  if (vocab!.size !== config.vocabSize) fail(`vocabulary has ${vocab!.size} entries but the model's vocabSize is ${config.vocabSize}`);
  const model = new CharLM(be, config);
  for (const [name, p] of model.params) {
    const t = tensors.get(name) ?? fail(`missing tensor '${name}' (shape [${p.shape}])`);
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      fail(`tensor '${name}' has shape [${t.shape}], the model needs [${p.shape}]`);
    }
    p.data.set(t.data);
  }
  const optimizer = new Map<string, Tensor>();
  for (const [name, t] of tensors) if (name.startsWith('optimizer.')) optimizer.set(name, t);
  const trainState = metadata.train_state ? parseJson(file, 'train_state', metadata.train_state) as TrainState : null;
  return { model, vocab: vocab!, trainState, optimizer, optimizerStep: Number(metadata.optimizer_step ?? 0) || 0, metadata };
}
