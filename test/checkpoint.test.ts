// Checkpoints: save -> load gives identical outputs; corrupt files give clear errors naming the file.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { JsBackend } from '../src/backend/js.js';
import { ByteVocab, CharVocab } from '../src/data/vocab.js';
import { CharLM } from '../src/models/charlm.js';
import { loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.js';
import { encodeSafetensors } from '../src/io/safetensors.js';

const be = new JsBackend('float32');
const dir = mkdtempSync(join(tmpdir(), 'rnnkit-ckpt-'));

for (const cell of ['lstm', 'gru', 'rnn'] as const) {
  test(`save -> load gives identical logits (${cell})`, () => {
    const vocab = CharVocab.fromText('hello, мир');
    const model = new CharLM(be, { cell, vocabSize: vocab.size, embedding: 5, hidden: 6, layers: 2, dropout: 0.1 }, 3);
    const file = join(dir, `${cell}.safetensors`);
    saveCheckpoint(file, model, vocab);
    const ids = vocab.encode('hello мир');
    model.resetState(1);
    const a = Float32Array.from(model.forward(ids, ids.length, 1, false).subarray(0, ids.length * vocab.size));
    const loaded = loadCheckpoint(file, be);
    assert.deepEqual(loaded.model.config, model.config);
    assert.equal(loaded.vocab.decode(ids), 'hello мир');
    loaded.model.resetState(1);
    const b = loaded.model.forward(ids, ids.length, 1, false).subarray(0, ids.length * vocab.size);
    assert.deepEqual(Array.from(b), Array.from(a));
  });
}

test('a PyTorch-style export (rnn_type + vocab metadata only) loads with sizes from the shapes', () => {
  const model = new CharLM(be, { cell: 'gru', vocabSize: 256, embedding: 4, hidden: 3, layers: 2, dropout: 0 }, 1);
  const tensors = new Map([...model.params].map(([k, p]) => [k, { shape: p.shape, data: p.data }]));
  const file = join(dir, 'torch.safetensors');
  writeFileSync(file, encodeSafetensors(tensors, { rnn_type: 'GRU', vocab: 'bytes' }));
  const l = loadCheckpoint(file, be);
  assert.deepEqual(l.model.config, { cell: 'gru', vocabSize: 256, embedding: 4, hidden: 3, layers: 2, dropout: 0 });
  assert.ok(l.vocab instanceof ByteVocab);
});

test('corrupt checkpoints: clear errors naming the file and the problem', () => {
  const model = new CharLM(be, { cell: 'lstm', vocabSize: 256, embedding: 4, hidden: 3, layers: 1, dropout: 0 }, 1);
  const file = join(dir, 'good.safetensors');
  saveCheckpoint(file, model, new ByteVocab());
  const good = readFileSync(file);
  const cases: [string, Buffer, RegExp][] = [
    ['truncated', good.subarray(0, good.length - 7), /data_offsets|outside/],
    ['short', good.subarray(0, 5), /too short/],
    ['huge header', Buffer.concat([Buffer.from([255, 255, 255, 255, 255, 255, 255, 127]), good.subarray(8)]), /header size/],
    ['garbage json', Buffer.concat([good.subarray(0, 8), Buffer.alloc(good.length - 8, 0x41)]), /not valid JSON/],
  ];
  for (const [name, bytes, re] of cases) {
    const f = join(dir, `${name.replace(' ', '_')}.safetensors`);
    writeFileSync(f, bytes);
    assert.throws(() => loadCheckpoint(f, be), (e: Error) => e.message.includes(f) && re.test(e.message), name);
  }
  // a tensor with the wrong shape for the config
  const wrong = new Map([...model.params].map(([k, p]) => [k, { shape: k === 'decoder.bias' ? [2, 128] : p.shape, data: p.data }]));
  const f = join(dir, 'wrongshape.safetensors');
  writeFileSync(f, encodeSafetensors(wrong, { config: JSON.stringify(model.config), vocab: 'bytes', vocab_json: '{"kind":"bytes"}' }));
  assert.throws(() => loadCheckpoint(f, be), /decoder\.bias' has shape \[2,128\], the model needs \[256\]/);
});
