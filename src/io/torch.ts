// The PyTorch form of the char LM: a safetensors file laid out like model.state_dict() of pytorch/examples'
// word_language_model RNNModel (encoder.weight [V, E], rnn.weight_ih_l0 [G*H, E], rnn.weight_hh_l0 [G*H, H],
// rnn.bias_ih_l0, rnn.bias_hh_l0, ..., decoder.weight [V, H], decoder.bias [V]), float32, with __metadata__
// {"rnn_type": "LSTM"|"GRU"|"RNN_TANH"|"RNN_RELU", "vocab": "bytes"}. Sizes are read from the shapes.
//
// In Python (no safetensors package needed):
//   n = struct.unpack('<Q', raw[:8])[0]; header = json.loads(raw[8:8+n]); base = 8 + n
//   t = np.frombuffer(raw[base+a:base+b], '<f4').reshape(shape)   for each header[name].data_offsets [a, b]
// then model.load_state_dict(...) (see scripts/make_fixtures.py --check-export).

import type { Vocab } from '../data/vocab.js';
import { cellMode, type CharLM } from '../models/charlm.js';
import { encodeSafetensors } from './safetensors.js';

/**
 * Exports describe the plain stacked LSTM/GRU/RNN of word_language_model (and ONNX's operators): refuse a
 * model with normalisation, dilation or stride rather than write one that computes something else.
 */
export function checkPlainModel(model: CharLM, what: string): void {
  const { norm, dilation, stride } = model.config;
  const extras: string[] = [];
  if (norm && norm !== 'none') extras.push(`--norm ${norm}`);
  if (dilation?.some((d) => d !== 1)) extras.push(`--dilation ${dilation.join(',')}`);
  if (stride?.some((d) => d !== 1)) extras.push(`--stride ${stride.join(',')}`);
  if (extras.length) throw new Error(`cannot write ${what}: it holds plain stacked LSTM/GRU/RNN layers, and this model has ${extras.join(', ')}`);
}

/** PyTorch's state_dict order: encoder, then rnn layer by layer (w_ih, w_hh, b_ih, b_hh), then decoder. */
export function torchStateDictNames(layers: number): string[] {
  const names = ['encoder.weight'];
  for (let l = 0; l < layers; l++) names.push(`rnn.weight_ih_l${l}`, `rnn.weight_hh_l${l}`, `rnn.bias_ih_l${l}`, `rnn.bias_hh_l${l}`);
  names.push('decoder.weight', 'decoder.bias');
  return names;
}

/**
 * The model as a word_language_model safetensors file. A byte vocabulary is written as vocab "bytes" (the
 * form PyTorch scripts read); a character vocabulary also gets vocab_json so that rnnkit can load it back.
 */
export function encodeTorchCheckpoint(model: CharLM, vocab: Vocab): Buffer {
  checkPlainModel(model, 'a PyTorch word_language_model checkpoint');
  const tensors = new Map<string, { shape: number[]; data: ArrayLike<number> }>();
  for (const name of torchStateDictNames(model.config.layers)) {
    const p = model.params.get(name);
    if (!p) throw new Error(`the model has no parameter '${name}'`);
    tensors.set(name, { shape: p.shape, data: p.data });
  }
  const metadata: Record<string, string> = { rnn_type: cellMode[model.config.cell], vocab: vocab.kind };
  if (vocab.kind !== 'bytes') metadata.vocab_json = JSON.stringify(vocab.toJSON());
  return encodeSafetensors(tensors, metadata);
}
