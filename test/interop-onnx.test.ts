// ONNX export: rnnkit -> ONNX (ONNX's own LSTM/GRU/RNN operators) -> onnxruntime-node gives rnnkit's logits
// and final states to 1e-4, for every cell, 1 and 2 layers, batch > 1 and a non-zero initial state.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { JsBackend } from '../src/backend/js.js';
import { ByteVocab, CharVocab, type Vocab } from '../src/data/vocab.js';
import { encodeOnnx, onnxSchema, ONNX_OPSET } from '../src/io/onnx.js';
import { CharLM, type CellKind } from '../src/models/charlm.js';
import { saveCheckpoint } from '../src/train/checkpoint.js';
import { Rng } from '../src/util/rng.js';
import { closeTo } from './helpers.js';

const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof import('onnxruntime-node');
const here = dirname(fileURLToPath(import.meta.url));
const main = join(here, '..', 'src', 'cli', 'main.js');
const be = new JsBackend('float32');
const dir = mkdtempSync(join(tmpdir(), 'rnnkit-onnx-'));
const TOL = 1e-4;

const close = (what: string, got: ArrayLike<number>, want: ArrayLike<number>): void => closeTo(`${what} (onnxruntime vs rnnkit)`, got, want, TOL);

async function check(model: CharLM, vocab: Vocab, onnx: Uint8Array, T: number, B: number, seed: number): Promise<void> {
  const { layers: L, hidden: H, vocabSize: V, cell } = model.config;
  const rng = new Rng(seed);
  const ids = Int32Array.from({ length: T * B }, () => rng.int(V));
  const h0 = Float32Array.from({ length: L * B * H }, () => rng.uniform(-1, 1));
  const c0 = Float32Array.from({ length: L * B * H }, () => rng.uniform(-1, 1));
  model.resetState(B);
  model.h.set(h0);
  if (cell === 'lstm') model.c.set(c0);
  const logits = Float32Array.from(model.forward(ids, T, B, false).subarray(0, T * B * V));
  const session = await ort.InferenceSession.create(onnx);
  const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
    ids: new ort.Tensor('int64', BigInt64Array.from(ids, (v) => BigInt(v)), [T, B]),
    h0: new ort.Tensor('float32', h0, [L, B, H]),
  };
  if (cell === 'lstm') feeds.c0 = new ort.Tensor('float32', c0, [L, B, H]);
  const r = await session.run(feeds);
  assert.deepEqual(r.logits.dims, [T, B, V]);
  close('logits', r.logits.data as Float32Array, logits);
  close('hN', r.hN.data as Float32Array, model.h);
  if (cell === 'lstm') close('cN', r.cN.data as Float32Array, model.c);
  await session.release();
}

for (const cell of ['lstm', 'gru', 'rnn', 'rnn_relu'] as CellKind[]) {
  for (const layers of [1, 2]) {
    test(`ONNX ${cell} l${layers}: onnxruntime-node gives rnnkit's logits and final state to 1e-4`, async () => {
      const vocab = new ByteVocab();
      const model = new CharLM(be, { cell, vocabSize: 256, embedding: 7, hidden: 9, layers, dropout: 0 }, 11 + layers);
      // larger weights than the init so that the gates saturate differently and a wrong gate order shows
      for (const [name, p] of model.params) if (name.startsWith('rnn.')) for (let i = 0; i < p.size; i++) p.data[i] *= 3;
      await check(model, vocab, encodeOnnx(model, vocab), 6, 3, 5);
    });
  }
}

test('rnnkit export --format onnx (CLI) on a char-vocabulary checkpoint runs in onnxruntime-node', async () => {
  const vocab = CharVocab.fromText('hello, \u043c\u0438\u0440! \u00e9');
  const model = new CharLM(be, { cell: 'lstm', vocabSize: vocab.size, embedding: 4, hidden: 5, layers: 2, dropout: 0.1 }, 3);
  const ckpt = join(dir, 'chars.safetensors'), out = join(dir, 'chars.onnx');
  saveCheckpoint(ckpt, model, vocab);
  const r = spawnSync(process.execPath, [main, 'export', '--format', 'onnx', '--checkpoint', ckpt, '--out', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const bytes = readFileSync(out);
  const m = onnxSchema().lookupType('onnx.ModelProto').toObject(onnxSchema().lookupType('onnx.ModelProto').decode(bytes), { longs: Number }) as {
    opset_import: { version: number }[]; graph: { node: { op_type: string }[] }; metadata_props: { key: string; value: string }[];
  };
  assert.equal(m.opset_import[0].version, ONNX_OPSET);
  assert.equal(m.graph.node.filter((n) => n.op_type === 'LSTM').length, 2, 'one ONNX LSTM operator per layer');
  assert.equal(JSON.parse(m.metadata_props.find((p) => p.key === 'vocab_json')!.value).kind, 'chars');
  await check(model, vocab, bytes, 4, 2, 9);
});

test('rnnkit export with an unknown format or a missing checkpoint: clear errors', () => {
  const bad = spawnSync(process.execPath, [main, 'export', '--format', 'tflite', '--checkpoint', 'x', '--out', 'y'], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /tflite/);
  const missing = join(dir, 'nope.safetensors');
  const r = spawnSync(process.execPath, [main, 'export', '--format', 'onnx', '--checkpoint', missing, '--out', join(dir, 'o.onnx')], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.ok(r.stderr.includes(`cannot read checkpoint '${missing}': no such file`), r.stderr);
});

test('a model with normalisation, dilation or stride is refused by both exports (rather than written wrong)', async () => {
  const { encodeTorchCheckpoint } = await import('../src/io/torch.js');
  for (const extra of [{ norm: 'layer' as const }, { dilation: [1, 2] }, { stride: [2, 1] }]) {
    const model = new CharLM(be, { cell: 'lstm', vocabSize: 256, embedding: 4, hidden: 5, layers: 2, dropout: 0, ...extra }, 1);
    assert.throws(() => encodeOnnx(model, new ByteVocab()), /cannot write ONNX.*this model has --(norm|dilation|stride)/);
    assert.throws(() => encodeTorchCheckpoint(model, new ByteVocab()), /cannot write a PyTorch.*this model has --(norm|dilation|stride)/);
  }
});
