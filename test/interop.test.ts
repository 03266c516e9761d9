// PyTorch interop: word_language_model checkpoints written by PyTorch (scripts/make_fixtures.py, section D)
// give PyTorch's bits per byte in rnnkit (API and CLI), and `rnnkit export --format torch` writes that form back.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { JsBackend } from '../src/backend/js.js';
import { ByteVocab, CharVocab } from '../src/data/vocab.js';
import { decodeSafetensors } from '../src/io/safetensors.js';
import { encodeTorchCheckpoint, torchStateDictNames } from '../src/io/torch.js';
import { CharLM } from '../src/models/charlm.js';
import { loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.js';
import { evaluateStream } from '../src/train/evaluate.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = [join(here, '..'), join(here, '..', '..')].find((d) => {
  try { return readdirSync(join(d, 'test', 'fixtures')).includes('torch_interop.json'); } catch { return false; }
})!;
const fixtures = join(root, 'test', 'fixtures');
const main = join(root, 'dist', 'src', 'cli', 'main.js');
const spec = JSON.parse(readFileSync(join(fixtures, 'torch_interop.json'), 'utf8')) as {
  text: string; models: { file: string; rnn_type: string; E: number; H: number; L: number; bpc: number; logits_head: number[] }[];
};
const textFile = join(fixtures, spec.text);
const text = readFileSync(textFile);
const be = new JsBackend('float32');
const dir = mkdtempSync(join(tmpdir(), 'rnnkit-interop-'));
const cellOf: Record<string, string> = { LSTM: 'lstm', GRU: 'gru', RNN_TANH: 'rnn', RNN_RELU: 'rnn_relu' };

function rnnkit(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('the evaluation text has bytes that are not UTF-8 (the byte vocabulary takes them as they are)', () => {
  assert.throws(() => new TextDecoder('utf-8', { fatal: true }).decode(text));
  const ids = new ByteVocab().encode(text);
  assert.deepEqual(Array.from(ids), Array.from(text));
});

for (const m of spec.models) {
  test(`PyTorch ${m.rnn_type} l${m.L} safetensors -> rnnkit gives PyTorch's bpc to 1e-4 (evaluateStream)`, async () => {
    const { model, vocab } = loadCheckpoint(join(fixtures, m.file), be);
    assert.ok(vocab instanceof ByteVocab);
    assert.deepEqual(model.config, { cell: cellOf[m.rnn_type], vocabSize: 256, embedding: m.E, hidden: m.H, layers: m.L, dropout: 0 });
    const r = await evaluateStream(model, vocab.encode(text));
    assert.equal(r.chars, text.length - 1);
    assert.ok(Math.abs(r.bpc - m.bpc) <= 1e-4, `bpc ${r.bpc} vs PyTorch ${m.bpc}`);
    // and the first logits themselves
    model.resetState(1);
    const logits = model.forward(vocab.encode(text).subarray(0, 3), 3, 1, false);
    for (let i = 0; i < m.logits_head.length; i++) {
      assert.ok(Math.abs(logits[i] - m.logits_head[i]) <= 1e-4, `logit ${i}: ${logits[i]} vs ${m.logits_head[i]}`);
    }
  });
}

test('rnnkit eval --checkpoint <PyTorch file> prints PyTorch\'s bpc (to 1e-4)', () => {
  for (const m of [spec.models[0], spec.models[1]]) {
    const r = rnnkit('eval', '--checkpoint', join(fixtures, m.file), '--data', textFile, '--json', '--backend', 'js');
    assert.equal(r.code, 0, r.err);
    const o = JSON.parse(r.out.trim()) as { bpc: number; chars: number };
    assert.equal(o.chars, text.length - 1);
    assert.ok(Math.abs(o.bpc - m.bpc) <= 1e-4, `${m.file}: bpc ${o.bpc} vs PyTorch ${m.bpc}`);
  }
});

test('rnnkit export --format torch writes the word_language_model form; loading it back gives the same logits', () => {
  const vocab = new ByteVocab();
  for (const cell of ['lstm', 'gru', 'rnn', 'rnn_relu'] as const) {
    const model = new CharLM(be, { cell, vocabSize: 256, embedding: 5, hidden: 6, layers: 2, dropout: 0.2 }, 7);
    const ckpt = join(dir, `${cell}.safetensors`), out = join(dir, `${cell}.torch.safetensors`);
    saveCheckpoint(ckpt, model, vocab);
    const r = rnnkit('export', '--format', 'torch', '--checkpoint', ckpt, '--out', out);
    assert.equal(r.code, 0, r.err);
    const st = decodeSafetensors(readFileSync(out), out);
    // exactly PyTorch's state_dict keys, in its order, and the two metadata keys word_language_model scripts read
    assert.deepEqual([...st.tensors.keys()], torchStateDictNames(2));
    assert.deepEqual(st.metadata, { rnn_type: { lstm: 'LSTM', gru: 'GRU', rnn: 'RNN_TANH', rnn_relu: 'RNN_RELU' }[cell], vocab: 'bytes' });
    const back = loadCheckpoint(out, be);
    const ids = vocab.encode('round trip, \u00e9t\u00e9');
    model.resetState(1); back.model.resetState(1);
    const a = Array.from(model.forward(ids, ids.length, 1, false).subarray(0, ids.length * 256));
    const b = Array.from(back.model.forward(ids, ids.length, 1, false).subarray(0, ids.length * 256));
    assert.deepEqual(b, a);
  }
});

test('a PyTorch fixture exported with --format torch is byte-for-byte the same tensors', () => {
  const m = spec.models[0], src = join(fixtures, m.file), out = join(dir, 'again.safetensors');
  assert.equal(rnnkit('export', '--format', 'torch', '--checkpoint', src, '--out', out).code, 0);
  const a = decodeSafetensors(readFileSync(src), src), b = decodeSafetensors(readFileSync(out), out);
  assert.deepEqual([...b.tensors.keys()], [...a.tensors.keys()]);
  for (const [k, t] of a.tensors) assert.deepEqual(b.tensors.get(k), t, k);
});

test('a character vocabulary survives a torch export (vocab_json kept beside rnn_type)', () => {
  const vocab = CharVocab.fromText('abc \u043c\u0438\u0440');
  const model = new CharLM(be, { cell: 'gru', vocabSize: vocab.size, embedding: 3, hidden: 4, layers: 1, dropout: 0 }, 2);
  const f = join(dir, 'chars.safetensors');
  writeFileSync(f, encodeTorchCheckpoint(model, vocab));
  const back = loadCheckpoint(f, be);
  assert.equal(back.vocab.kind, 'chars');
  assert.equal(back.vocab.decode(back.vocab.encode('\u043c\u0438\u0440 abc')), '\u043c\u0438\u0440 abc');
});

const torchAvailable = spawnSync('/usr/bin/python3', ['-c', 'import torch, numpy'], { timeout: 60_000 }).status === 0;
test('PyTorch reads rnnkit\'s torch export and gets rnnkit\'s bpc (make_fixtures.py --check-export)', { skip: !torchAvailable && 'needs /usr/bin/python3 with torch' }, async () => {
  const m = spec.models[1], out = join(dir, 'for-torch.safetensors');
  assert.equal(rnnkit('export', '--format', 'torch', '--checkpoint', join(fixtures, m.file), '--out', out).code, 0);
  const r = spawnSync('/usr/bin/python3', [join(root, 'scripts', 'make_fixtures.py'), '--check-export', out], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim().split('\n').pop()!) as { bpc: number };
  const { model, vocab } = loadCheckpoint(out, be);
  const mine = (await evaluateStream(model, vocab.encode(text))).bpc;
  assert.ok(Math.abs(o.bpc - mine) <= 1e-4, `PyTorch ${o.bpc} vs rnnkit ${mine}`);
});

test('rnnkit sample --checkpoint <PyTorch file> samples (repeatably with a seed)', () => {
  const f = join(fixtures, spec.models[0].file);
  const a = rnnkit('sample', '--checkpoint', f, '--prime', 'The ', '--length', '40', '--seed', '3', '--backend', 'js');
  const b = rnnkit('sample', '--checkpoint', f, '--prime', 'The ', '--length', '40', '--seed', '3', '--backend', 'js');
  assert.equal(a.code, 0, a.err);
  assert.ok(a.out.startsWith('The '), a.out);
  assert.ok(Buffer.byteLength(a.out) >= 40);
  assert.equal(b.out, a.out);
});
