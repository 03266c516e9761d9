// ONNX export of the char LM, with ONNX's own LSTM / GRU / RNN operators (opset 14), so that any ONNX runtime
// runs it with its fused recurrent kernels.
//
// Graph (time-major, like PyTorch's word_language_model):
//   inputs  ids int64 [T, B], h0 float [L, B, H] (and c0 [L, B, H] for the LSTM)
//   outputs logits float [T, B, V], hN [L, B, H] (and cN)
//   Gather(encoder.weight, ids) -> for each layer: Slice h0/c0 -> LSTM|GRU|RNN -> Squeeze the direction axis
//   -> MatMul(decoder.weight^T) + decoder.bias; Concat the layers' final states.
//
// PyTorch's gate order differs from ONNX's: LSTM rows i,f,g,o become i,o,f,c; GRU rows r,z,n become z,r,h
// (with linear_before_reset = 1, which is PyTorch's GRU). W = [1, G*H, in], R = [1, G*H, H], B = [1, 2*G*H]
// (the input biases, then the recurrent biases), as the ONNX operator spec lays them out.
//
// The protobuf is written with protobufjs from the subset of onnx.proto below (proto2, as onnx.proto is).

import protobuf from 'protobufjs';
import type { Vocab } from '../data/vocab.js';
import { cellMode, type CharLM } from '../models/charlm.js';
import { checkPlainModel } from './torch.js';

export const ONNX_OPSET = 14;
export const ONNX_IR_VERSION = 8;

/** The part of onnx.proto (github.com/onnx/onnx, onnx/onnx.proto) this exporter writes. Field numbers as there. */
export const ONNX_PROTO_SUBSET = `
syntax = "proto2";
package onnx;
message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; FLOATS = 6; INTS = 7; STRINGS = 8; }
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  optional AttributeType type = 20;
}
message ValueInfoProto { optional string name = 1; optional TypeProto type = 2; optional string doc_string = 3; }
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
  optional string domain = 7;
}
message StringStringEntryProto { optional string key = 1; optional string value = 2; }
message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
  repeated StringStringEntryProto metadata_props = 14;
}
message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}
message TensorProto {
  enum DataType { UNDEFINED = 0; FLOAT = 1; UINT8 = 2; INT8 = 3; UINT16 = 4; INT16 = 5; INT32 = 6; INT64 = 7; }
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional string name = 8;
  optional bytes raw_data = 9;
}
message TensorShapeProto {
  message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor { optional int32 elem_type = 1; optional TensorShapeProto shape = 2; }
  oneof value { Tensor tensor_type = 1; }
}
message OperatorSetIdProto { optional string domain = 1; optional int64 version = 2; }
`;

let root: protobuf.Root | null = null;
/** The parsed onnx.proto subset (shared with tests that read the file back). */
export function onnxSchema(): protobuf.Root {
  return (root ??= protobuf.parse(ONNX_PROTO_SUBSET, { keepCase: true }).root);
}

const FLOAT = 1, INT64 = 7;
const ATTR = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7, STRINGS: 8 };

interface Attr { name: string; type: number; i?: number; f?: number; s?: Uint8Array; ints?: number[]; strings?: Uint8Array[] }
const attrInt = (name: string, i: number): Attr => ({ name, type: ATTR.INT, i });
const attrStrings = (name: string, v: string[]): Attr => ({ name, type: ATTR.STRINGS, strings: v.map((x) => Buffer.from(x, 'utf8')) });

function floatTensor(name: string, dims: number[], data: ArrayLike<number>): object {
  const f = Float32Array.from(data);
  const raw = Buffer.alloc(f.length * 4);
  for (let i = 0; i < f.length; i++) raw.writeFloatLE(f[i], 4 * i); // little-endian, as ONNX's raw_data requires
  return { name, dims, data_type: FLOAT, raw_data: raw };
}

function int64Tensor(name: string, dims: number[], data: number[]): object {
  const raw = Buffer.alloc(data.length * 8);
  data.forEach((v, i) => raw.writeBigInt64LE(BigInt(v), 8 * i));
  return { name, dims, data_type: INT64, raw_data: raw };
}

const dimsOf = (dims: (number | string)[]): object => ({
  dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })),
});
const valueInfo = (name: string, elemType: number, dims: (number | string)[]): object => ({
  name, type: { tensor_type: { elem_type: elemType, shape: dimsOf(dims) } },
});

/** Rows of a [G*H, n] matrix (or [G*H] vector) regrouped by gate: `order` lists the source gate of each output gate. */
function regate(src: ArrayLike<number>, G: number, H: number, n: number, order: number[]): Float32Array {
  const out = new Float32Array(G * H * n);
  order.forEach((g, k) => {
    for (let r = 0; r < H; r++) for (let j = 0; j < n; j++) out[(k * H + r) * n + j] = src[(g * H + r) * n + j];
  });
  return out;
}

/** PyTorch gate index for each ONNX gate position. */
const GATE_ORDER: Record<string, number[]> = {
  LSTM: [0, 3, 1, 2], // ONNX i,o,f,c  <- PyTorch i,f,g,o
  GRU: [1, 0, 2], //     ONNX z,r,h    <- PyTorch r,z,n
  RNN_TANH: [0],
  RNN_RELU: [0],
};

export interface OnnxExportOptions {
  /** Stored in the model's metadata_props. */
  producerVersion?: string;
}

/** The char LM as ONNX ModelProto bytes. */
export function encodeOnnx(model: CharLM, vocab: Vocab, opts: OnnxExportOptions = {}): Uint8Array {
  checkPlainModel(model, 'ONNX with LSTM/GRU/RNN operators');
  const { cell, vocabSize: V, embedding: E, hidden: H, layers: L } = model.config;
  const mode = cellMode[cell];
  const lstm = mode === 'LSTM';
  const G = lstm ? 4 : mode === 'GRU' ? 3 : 1;
  const param = (name: string): ArrayLike<number> => {
    const p = model.params.get(name);
    if (!p) throw new Error(`the model has no parameter '${name}'`);
    return p.data;
  };
  const initializers: object[] = [];
  const nodes: object[] = [];
  const node = (op: string, inputs: string[], outputs: string[], attribute: Attr[] = []): void => {
    nodes.push({ op_type: op, name: `${op}_${nodes.length}`, input: inputs, output: outputs, attribute });
  };

  initializers.push(floatTensor('encoder.weight', [V, E], param('encoder.weight')));
  node('Gather', ['encoder.weight', 'ids'], ['emb'], [attrInt('axis', 0)]);

  initializers.push(int64Tensor('axis0', [1], [0]), int64Tensor('axis1', [1], [1]));
  let x = 'emb';
  const hOuts: string[] = [], cOuts: string[] = [];
  for (let l = 0; l < L; l++) {
    const I = l === 0 ? E : H, order = GATE_ORDER[mode];
    const W = regate(param(`rnn.weight_ih_l${l}`), G, H, I, order);
    const R = regate(param(`rnn.weight_hh_l${l}`), G, H, H, order);
    const Bias = new Float32Array(2 * G * H);
    Bias.set(regate(param(`rnn.bias_ih_l${l}`), G, H, 1, order), 0);
    Bias.set(regate(param(`rnn.bias_hh_l${l}`), G, H, 1, order), G * H);
    initializers.push(
      floatTensor(`W_l${l}`, [1, G * H, I], W),
      floatTensor(`R_l${l}`, [1, G * H, H], R),
      floatTensor(`B_l${l}`, [1, 2 * G * H], Bias),
      int64Tensor(`start_l${l}`, [1], [l]),
      int64Tensor(`end_l${l}`, [1], [l + 1]),
    );
    node('Slice', ['h0', `start_l${l}`, `end_l${l}`, 'axis0'], [`h0_l${l}`]);
    if (lstm) node('Slice', ['c0', `start_l${l}`, `end_l${l}`, 'axis0'], [`c0_l${l}`]);
    const inputs = [x, `W_l${l}`, `R_l${l}`, `B_l${l}`, '', `h0_l${l}`];
    const outputs = [`Y_l${l}`, `hN_l${l}`];
    const attrs: Attr[] = [attrInt('hidden_size', H)];
    if (lstm) { inputs.push(`c0_l${l}`); outputs.push(`cN_l${l}`); node('LSTM', inputs, outputs, attrs); }
    else if (mode === 'GRU') node('GRU', inputs, outputs, [...attrs, attrInt('linear_before_reset', 1)]);
    else node('RNN', inputs, outputs, [...attrs, attrStrings('activations', [mode === 'RNN_RELU' ? 'Relu' : 'Tanh'])]);
    node('Squeeze', [`Y_l${l}`, 'axis1'], [`out_l${l}`]); // [T, 1, B, H] -> [T, B, H]
    x = `out_l${l}`;
    hOuts.push(`hN_l${l}`);
    cOuts.push(`cN_l${l}`);
  }
  // decoder: logits = out · decoder.weight^T + decoder.bias
  const dw = param('decoder.weight'), dwT = new Float32Array(H * V);
  for (let v = 0; v < V; v++) for (let h = 0; h < H; h++) dwT[h * V + v] = dw[v * H + h];
  initializers.push(floatTensor('decoder.weight_T', [H, V], dwT), floatTensor('decoder.bias', [V], param('decoder.bias')));
  node('MatMul', [x, 'decoder.weight_T'], ['decoded']);
  node('Add', ['decoded', 'decoder.bias'], ['logits']);
  if (L === 1) {
    node('Identity', [hOuts[0]], ['hN']);
    if (lstm) node('Identity', [cOuts[0]], ['cN']);
  } else {
    node('Concat', hOuts, ['hN'], [attrInt('axis', 0)]);
    if (lstm) node('Concat', cOuts, ['cN'], [attrInt('axis', 0)]);
  }

  const inputs = [valueInfo('ids', INT64, ['T', 'B']), valueInfo('h0', FLOAT, [L, 'B', H])];
  const outputs = [valueInfo('logits', FLOAT, ['T', 'B', V]), valueInfo('hN', FLOAT, [L, 'B', H])];
  if (lstm) { inputs.push(valueInfo('c0', FLOAT, [L, 'B', H])); outputs.push(valueInfo('cN', FLOAT, [L, 'B', H])); }
  const graph = {
    name: 'rnnkit_charlm',
    doc_string: `rnnkit character LM: ${L}x${H} ${mode}, embedding ${E}, vocabulary ${vocab.kind} (${V}). ids [T, B] time-major.`,
    node: nodes, initializer: initializers, input: inputs, output: outputs,
  };
  const ModelProto = onnxSchema().lookupType('onnx.ModelProto');
  const msg = {
    ir_version: ONNX_IR_VERSION,
    producer_name: 'rnnkit',
    producer_version: opts.producerVersion ?? '0.1.0',
    graph,
    opset_import: [{ domain: '', version: ONNX_OPSET }],
    metadata_props: [
      { key: 'rnn_type', value: mode },
      { key: 'vocab', value: vocab.kind },
      { key: 'vocab_json', value: JSON.stringify(vocab.toJSON()) },
      { key: 'config', value: JSON.stringify(model.config) },
    ],
  };
  const err = ModelProto.verify(msg);
  if (err) throw new Error(`ONNX export: internal error building the model (${err})`);
  return ModelProto.encode(ModelProto.fromObject(msg)).finish();
}
