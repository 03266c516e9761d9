// Checkpoints of the character LM as safetensors files.
//
// Tensors: the model's parameters under PyTorch's names (encoder.weight, rnn.weight_ih_l0, ...,
// decoder.weight, decoder.bias), which is the layout of pytorch/examples' word_language_model, plus the
// optimizer's state as optimizer.<slot>.<name>. __metadata__ (strings): format, rnn_type, vocab ('bytes' or
// 'chars'), vocab_json, config (JSON), train_state (JSON: step, epoch, position, RNG states, best bpc).
// A training checkpoint also holds the carried recurrent state as train_state.h / train_state.c.
// A file with only rnn_type/vocab metadata (a PyTorch export) loads too: sizes are read from the shapes.

import type { Backend } from '../backend/backend.js';
import { ByteVocab, vocabFromJSON, type Vocab } from '../data/vocab.js';
import { decodeSafetensors, encodeSafetensors, readSafetensorsFile, writeFileAtomic, type SafeTensors, type Tensor } from '../io/safetensors.js';
import { CharLM, cellMode, type CellKind, type CharLMConfig } from '../models/charlm.js';
import type { Optimizer } from '../optim/optim.js';

export const FORMAT = 'rnnkit-charlm/1';
/** Tensors holding the carried hidden and cell state [L, B, H] (flattened) in a training checkpoint. */
export const STATE_H = 'train_state.h';
export const STATE_C = 'train_state.c';

/** Where the latest training state goes beside the best checkpoint `out`: `<stem>.last.safetensors`. */
export function lastCheckpointPath(out: string): string {
  return out.replace(/(\.safetensors)?$/i, '.last.safetensors');
}

export interface TrainState {
  step: number;
  epoch: number;
  /** Row of the batched training stream where the next batch starts. */
  position: number;
  bestBpc: number | null;
  seconds: number;
  /** Of those seconds, how many went to validation. */
  validSeconds?: number;
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
  /** The carried recurrent state of a training checkpoint (flattened [L, B, H]), or null. */
  carried: { h: Float32Array | null; c: Float32Array | null };
}

const rnnTypeOf = (cell: CellKind): string => cellMode[cell];
const cellOfRnnType: Record<string, CellKind> = { LSTM: 'lstm', GRU: 'gru', RNN_TANH: 'rnn', RNN_RELU: 'rnn_relu' };

/** The buffers a checkpoint reads: on a deferred backend (webgpu) they must come back from the device first. */
export async function syncCheckpointBuffers(model: CharLM, optimizer?: Optimizer): Promise<void> {
  if (!model.be.syncHost) return;
  const bufs = [...model.params.values()].map((p) => p.data);
  for (const [, b] of model.rnn.buffers()) if (b.data instanceof Float32Array) bufs.push(b.data);
  if (optimizer) for (const slot of Object.values(optimizer.state().slots)) bufs.push(...slot);
  bufs.push(model.h, model.c);
  await model.be.syncHost(bufs);
}

export function saveCheckpoint(file: string, model: CharLM, vocab: Vocab, trainState?: TrainState, optimizer?: Optimizer): void {
  writeFileAtomic(file, checkpointToBytes(model, vocab, trainState, optimizer));
}

/** The bytes saveCheckpoint writes (a safetensors file), e.g. for a download in a browser. */
export function checkpointToBytes(model: CharLM, vocab: Vocab, trainState?: TrainState, optimizer?: Optimizer): Uint8Array {
  const tensors = new Map<string, { shape: number[]; data: ArrayLike<number> }>();
  for (const [name, p] of model.params) tensors.set(name, { shape: p.shape, data: p.data });
  for (const [name, b] of model.rnn.buffers()) tensors.set(`rnn.${name}`, b); // batch norm's population statistics
  let optimizerStep = 0;
  if (optimizer) {
    const st = optimizer.state();
    optimizerStep = st.step;
    const names = [...model.params.keys()];
    for (const [slot, bufs] of Object.entries(st.slots)) {
      bufs.forEach((b, i) => tensors.set(`optimizer.${slot}.${names[i]}`, { shape: model.params.get(names[i])!.shape, data: b }));
    }
  }
  if (trainState) {
    // The carried recurrent state (truncated BPTT), so that a resumed run continues exactly.
    tensors.set(STATE_H, { shape: [model.h.length], data: model.h });
    if (model.c.length > 0) tensors.set(STATE_C, { shape: [model.c.length], data: model.c });
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
  return encodeSafetensors(tensors, metadata);
}

function parseJson(file: string, key: string, s: string): any {
  try {
    return JSON.parse(s);
  } catch {
    throw new Error(`bad checkpoint '${file}': __metadata__.${key} is not valid JSON`);
  }
}

const GATES: Record<CellKind, number> = { lstm: 4, gru: 3, rnn: 1, rnn_relu: 1 };

/** The parameter shapes a config needs, by PyTorch name (checked before anything is allocated). */
export function expectedShapes(c: CharLMConfig): Map<string, number[]> {
  const G = GATES[c.cell] * c.hidden, m = new Map<string, number[]>([['encoder.weight', [c.vocabSize, c.embedding]]]);
  for (let l = 0; l < c.layers; l++) {
    const I = l === 0 ? c.embedding : c.hidden;
    if (c.norm === 'weight') { // torch.nn.utils.weight_norm names
      m.set(`rnn.weight_ih_l${l}_g`, [G, 1]); m.set(`rnn.weight_ih_l${l}_v`, [G, I]);
      m.set(`rnn.weight_hh_l${l}_g`, [G, 1]); m.set(`rnn.weight_hh_l${l}_v`, [G, c.hidden]);
    } else {
      m.set(`rnn.weight_ih_l${l}`, [G, I]);
      m.set(`rnn.weight_hh_l${l}`, [G, c.hidden]);
    }
    m.set(`rnn.bias_ih_l${l}`, [G]);
    m.set(`rnn.bias_hh_l${l}`, [G]);
    if (c.norm === 'layer' || c.norm === 'batch') {
      for (const site of ['ih', 'hh']) { m.set(`rnn.norm_${site}_weight_l${l}`, [G]); m.set(`rnn.norm_${site}_bias_l${l}`, [G]); }
      if (c.cell === 'lstm') { m.set(`rnn.norm_c_weight_l${l}`, [c.hidden]); m.set(`rnn.norm_c_bias_l${l}`, [c.hidden]); }
    }
  }
  m.set('decoder.weight', [c.vocabSize, c.hidden]);
  m.set('decoder.bias', [c.vocabSize]);
  return m;
}

const isCount = (v: unknown, min = 0): v is number => Number.isSafeInteger(v) && (v as number) >= min;

function checkTrainState(fail: (why: string) => never, s: unknown): TrainState {
  const bad = (what: string): never => fail(`__metadata__.train_state: ${what}`);
  if (typeof s !== 'object' || s === null || Array.isArray(s)) bad('not a JSON object');
  const t = s as Record<string, unknown>;
  for (const k of ['step', 'epoch', 'position']) if (!isCount(t[k])) bad(`${k} is not a non-negative integer`);
  for (const k of ['seconds', 'chars']) if (t[k] !== undefined && !(typeof t[k] === 'number' && (t[k] as number) >= 0)) bad(`${k} is not a non-negative number`);
  if (t.bestBpc !== undefined && t.bestBpc !== null && typeof t.bestBpc !== 'number') bad('bestBpc is not a number');
  if (t.rng !== undefined && !(Array.isArray(t.rng) && t.rng.every((r) => Array.isArray(r) && r.length === 4 && r.every((w) => isCount(w) && w < 2 ** 32)))) {
    bad('rng is not a list of 4-word generator states');
  }
  if (t.args !== undefined && (typeof t.args !== 'object' || t.args === null || Array.isArray(t.args) ||
    !Object.values(t.args).every((v) => v === null || ['string', 'number', 'boolean'].includes(typeof v)))) bad('args is not an object of flag values');
  return { seconds: 0, chars: 0, bestBpc: null, ...t } as TrainState;
}

/** Load a checkpoint written by saveCheckpoint, or a PyTorch word_language_model export (see above). */
export function loadCheckpoint(file: string, be: Backend): LoadedCheckpoint {
  return checkpointFromSafetensors(readSafetensorsFile(file), file, be);
}

/** loadCheckpoint from the file's bytes (a browser's File or fetch); `file` names it in error messages. */
export function checkpointFromBytes(bytes: Uint8Array, file: string, be: Backend): LoadedCheckpoint {
  return checkpointFromSafetensors(decodeSafetensors(bytes, file), file, be);
}

function checkpointFromSafetensors({ tensors, metadata }: SafeTensors, file: string, be: Backend): LoadedCheckpoint {
  const fail = (why: string): never => { throw new Error(`bad checkpoint '${file}': ${why}`); };
  const shapeOf = (name: string): number[] => tensors.get(name)?.shape ?? fail(`missing tensor '${name}'`);
  let config: CharLMConfig;
  if (metadata.config) {
    const c = parseJson(file, 'config', metadata.config);
    const ok = c && typeof c === 'object' && typeof c.cell === 'string' && Object.hasOwn(cellMode, c.cell) &&
      [c.vocabSize, c.embedding, c.hidden, c.layers].every((v) => isCount(v, 1) && v < 1e6);
    if (!ok) fail('__metadata__.config does not describe a model (cell, vocabSize, embedding, hidden, layers)');
    config = {
      cell: c.cell, vocabSize: c.vocabSize, embedding: c.embedding, hidden: c.hidden, layers: c.layers,
      dropout: typeof c.dropout === 'number' && c.dropout >= 0 && c.dropout < 1 ? c.dropout : 0,
    };
    if (c.norm !== undefined && c.norm !== 'none') {
      if (!['layer', 'batch', 'weight'].includes(c.norm)) fail(`__metadata__.config.norm '${c.norm}' is not none, layer, batch or weight`);
      config.norm = c.norm;
    }
    for (const k of ['dilation', 'stride'] as const) {
      if (c[k] === undefined) continue;
      if (!Array.isArray(c[k]) || c[k].length !== c.layers || !c[k].every((v: unknown) => isCount(v, 1) && (v as number) <= 1024)) {
        fail(`__metadata__.config.${k} must list one integer in [1, 1024] per layer`);
      }
      config[k] = c[k];
    }
  } else {
    const rt = metadata.rnn_type;
    if (!rt) fail('no __metadata__.config or __metadata__.rnn_type: not an rnnkit or word_language_model checkpoint');
    if (!Object.hasOwn(cellOfRnnType, rt)) fail(`unknown rnn_type '${rt}' (expected LSTM, GRU, RNN_TANH or RNN_RELU)`);
    const enc = shapeOf('encoder.weight');
    const whh = shapeOf('rnn.weight_hh_l0');
    if (enc.length !== 2 || whh.length !== 2) fail('encoder.weight and rnn.weight_hh_l0 must be matrices');
    let layers = 0;
    while (tensors.has(`rnn.weight_ih_l${layers}`)) layers++;
    if (layers === 0) fail("missing tensor 'rnn.weight_ih_l0'");
    config = { cell: cellOfRnnType[rt], vocabSize: enc[0], embedding: enc[1], hidden: whh[1], layers, dropout: 0 };
    if (![config.vocabSize, config.embedding, config.hidden].every((v) => v > 0)) fail(`tensor shapes give an empty model (vocabulary ${config.vocabSize}, embedding ${config.embedding}, hidden ${config.hidden})`);
  }
  // Every tensor the config needs must be in the file with its shape before the model is allocated: sizes in
  // a hostile header can then not ask for more memory than the file itself holds.
  if (tensors.size < 4 * config.layers + 3) {
    fail(`the model has ${config.layers} layers, which need at least ${4 * config.layers + 3} tensors; the file has ${tensors.size}`);
  }
  for (const [name, shape] of expectedShapes(config)) {
    const t = tensors.get(name) ?? fail(`missing tensor '${name}' (shape [${shape}])`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      fail(`tensor '${name}' has shape [${t.shape}], the model needs [${shape}]`);
    }
    let bad = 0;
    for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i])) bad++;
    if (bad > 0) fail(`tensor '${name}' has ${bad} non-finite value${bad > 1 ? 's' : ''} (NaN or infinity): the model diverged or the file is damaged`);
  }
  let vocab: Vocab;
  if (metadata.vocab_json) {
    const v = parseJson(file, 'vocab_json', metadata.vocab_json);
    try {
      vocab = vocabFromJSON(v);
    } catch (e) {
      fail(`__metadata__.vocab_json: ${(e as Error).message}`);
    }
  } else if (!metadata.vocab || metadata.vocab === 'bytes') vocab = new ByteVocab();
  else fail(`vocab '${metadata.vocab}' needs a vocab_json entry`);
  if (vocab!.size !== config.vocabSize) fail(`vocabulary has ${vocab!.size} entries but the model's vocabSize is ${config.vocabSize}`);
  const trainState = metadata.train_state ? checkTrainState(fail, parseJson(file, 'train_state', metadata.train_state)) : null;
  const optimizerStep = metadata.optimizer_step === undefined ? 0 : Number(metadata.optimizer_step);
  if (!isCount(optimizerStep)) fail(`__metadata__.optimizer_step '${metadata.optimizer_step}' is not a non-negative integer`);
  let model: CharLM;
  try {
    model = new CharLM(be, config);
  } catch (e) {
    fail(`cannot build the model it describes: ${(e as Error).message}`);
  }
  for (const [name, p] of model!.params) {
    const t = tensors.get(name) ?? fail(`missing tensor '${name}' (shape [${p.shape}])`);
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      fail(`tensor '${name}' has shape [${t.shape}], the model needs [${p.shape}]`);
    }
    p.data.set(t.data);
  }
  try {
    model!.rnn.loadBuffers((name) => tensors.get(`rnn.${name}`)?.data);
  } catch (e) {
    fail((e as Error).message);
  }
  const optimizer = new Map<string, Tensor>();
  for (const [name, t] of tensors) if (name.startsWith('optimizer.')) optimizer.set(name, t);
  const carried = { h: tensors.get(STATE_H)?.data ?? null, c: tensors.get(STATE_C)?.data ?? null };
  return { model: model!, vocab: vocab!, trainState, optimizer, optimizerStep, metadata, carried };
}

/**
 * Put a training checkpoint's state back for `--resume`: the optimizer's moments and step count, the dropout
 * generators, and the carried hidden/cell state for batch size `batch`. With the TrainState (step, epoch, data
 * position) this makes the resumed run continue exactly where the saved one was. Errors name the file.
 */
export function restoreTrainingState(file: string, ck: LoadedCheckpoint, optimizer: Optimizer, batch: number): void {
  const fail = (why: string): never => { throw new Error(`cannot resume from '${file}': ${why}`); };
  const { model } = ck;
  if (!ck.trainState) fail('it has no training state (__metadata__.train_state); it can only start a new run');
  const names = [...model.params.keys()];
  const st = optimizer.state();
  const slots = Object.keys(st.slots);
  for (const name of ck.optimizer.keys()) {
    const slot = name.slice('optimizer.'.length, name.indexOf('.', 'optimizer.'.length));
    if (!slots.includes(slot)) fail(`it holds optimizer state '${slot}', which this run's optimizer does not have (slots: ${slots.join(', ') || 'none'}); resume with the same --optimizer`);
  }
  for (const [slot, bufs] of Object.entries(st.slots)) {
    bufs.forEach((b, i) => {
      const key = `optimizer.${slot}.${names[i]}`;
      const t = ck.optimizer.get(key) ?? fail(`missing optimizer tensor '${key}'; resume with the same --optimizer`);
      if (t.data.length !== b.length) fail(`optimizer tensor '${key}' has ${t.data.length} values, the parameter has ${b.length}`);
      b.set(t.data);
    });
  }
  optimizer.setStep(ck.optimizerStep);
  const rng = ck.trainState!.rng;
  if (rng) {
    if (rng.length !== model.dropoutRngState.length) fail(`it has ${rng.length} generator states, the model has ${model.dropoutRngState.length}`);
    model.dropoutRngState = rng;
  }
  model.resetState(batch);
  for (const [what, saved, buf] of [['hidden', ck.carried.h, model.h], ['cell', ck.carried.c, model.c]] as const) {
    if (!saved) continue;
    if (saved.length !== buf.length) {
      const per = model.config.layers * model.config.hidden;
      fail(`its carried ${what} state is for batch size ${saved.length / per}, this run has --batch ${batch}; resume with the same --batch`);
    }
    buf.set(saved);
  }
}
