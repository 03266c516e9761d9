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
import { decodeSafetensors, encodeSafetensors } from '../src/io/safetensors.js';

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
    ['trailing bytes', Buffer.concat([good, Buffer.from('polyglot')]), /8 bytes after the last tensor/],
  ];
  for (const [name, bytes, re] of cases) {
    const f = join(dir, `${name.replace(' ', '_')}.safetensors`);
    writeFileSync(f, bytes);
    assert.throws(() => loadCheckpoint(f, be), (e: Error) => e.message.includes(f) && re.test(e.message), name);
  }
  // a weight that is NaN (a diverged run, or a damaged file)
  const nan = Buffer.from(good), st = decodeSafetensors(good, file);
  const hlen = Number(good.readBigUInt64LE(0));
  const hdr = JSON.parse(good.subarray(8, 8 + hlen).toString()) as Record<string, { data_offsets: number[] }>;
  nan.writeFloatLE(NaN, 8 + hlen + hdr['rnn.weight_hh_l0'].data_offsets[0] + 4 * 5);
  assert.ok(st.tensors.has('rnn.weight_hh_l0'));
  const fnan = join(dir, 'nan.safetensors');
  writeFileSync(fnan, nan);
  assert.throws(() => loadCheckpoint(fnan, be), (e: Error) => e.message.includes(fnan) && /'rnn\.weight_hh_l0' has 1 non-finite value \(NaN or infinity\)/.test(e.message));
  // a tensor with the wrong shape for the config
  const wrong = new Map([...model.params].map(([k, p]) => [k, { shape: k === 'decoder.bias' ? [2, 128] : p.shape, data: p.data }]));
  const f = join(dir, 'wrongshape.safetensors');
  writeFileSync(f, encodeSafetensors(wrong, { config: JSON.stringify(model.config), vocab: 'bytes', vocab_json: '{"kind":"bytes"}' }));
  assert.throws(() => loadCheckpoint(f, be), /decoder\.bias' has shape \[2,128\], the model needs \[256\]/);
});

test('kill -9 at random moments during 100+ saves never leaves the latest complete checkpoint unreadable', async () => {
  const { spawn } = await import('node:child_process');
  const { pathToFileURL } = await import('node:url');
  const { readdirSync } = await import('node:fs');
  const kdir = mkdtempSync(join(tmpdir(), 'rnnkit-kill-'));
  const file = join(kdir, 'model.safetensors');
  const mod = (p: string): string => pathToFileURL(join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'src', p)).href;
  // The child saves a ~1.6 MB checkpoint with its version (1, 2, 3, ...) in decoder.bias[0] and train_state.step,
  // in a loop, and prints each version once saveCheckpoint has returned.
  const child = join(kdir, 'saver.mjs');
  writeFileSync(child, `
    import { JsBackend } from '${mod('backend/js.js')}';
    import { ByteVocab } from '${mod('data/vocab.js')}';
    import { CharLM } from '${mod('models/charlm.js')}';
    import { saveCheckpoint } from '${mod('train/checkpoint.js')}';
    const be = new JsBackend('float32');
    const model = new CharLM(be, { cell: 'lstm', vocabSize: 256, embedding: 32, hidden: 160, layers: 2, dropout: 0 }, 1);
    const start = Number(process.argv[2]);
    for (let v = start; ; v++) {
      model.params.get('decoder.bias').data[0] = v;
      saveCheckpoint(process.argv[3], model, new ByteVocab(), { step: v, epoch: 0, position: 0, bestBpc: null, seconds: 0, chars: 0 });
      process.stdout.write(v + '\\n');
    }`);
  let saves = 0, rounds = 0, version = 0, midWrite;
  while (saves < 100 || rounds < 10) {
    const p = spawn(process.execPath, [child, String(version + 1), file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    const exited = new Promise((r) => p.on('exit', r));
    // wait for the first completed save of this round, then kill at a random moment (0-120 ms later)
    while (!out.includes('\n') && p.exitCode === null) await new Promise((r) => setTimeout(r, 2));
    await new Promise((r) => setTimeout(r, Math.random() * 120));
    p.kill('SIGKILL');
    await exited;
    rounds++;
    const reported = out.trim().split('\n').map(Number);
    const lastReported = reported[reported.length - 1];
    saves += reported.length;
    // the file on disk is complete and is the last reported version or the one after it (renamed, not yet printed)
    const ck = loadCheckpoint(file, be);
    const v = ck.model.params.get('decoder.bias')!.data[0];
    assert.ok(v === lastReported || v === lastReported + 1, `round ${rounds}: on disk version ${v}, last reported ${lastReported}`);
    assert.equal(ck.trainState!.step, v);
    version = v;
  }
  // temporaries of killed writers are removed by the next save; at most the last round's one is left
  midWrite = readdirSync(kdir).filter((f) => f.endsWith('.tmp')).length;
  console.log(`# kill -9: ${rounds} rounds, ${saves} completed saves; the checkpoint always loaded; ${midWrite} temporary file left`);
  assert.ok(midWrite <= 1, `${midWrite} stale temporaries`);
  assert.ok(saves >= 100);
});

for (const norm of ['batch', 'layer', 'weight'] as const) {
  test(`save -> load keeps ${norm} norm (and batch norm's population statistics), dilation and stride`, () => {
    const model = new CharLM(be, { cell: 'lstm', vocabSize: 256, embedding: 4, hidden: 5, layers: 2, dropout: 0, norm, dilation: [1, 2], stride: [2, 1] }, 3);
    const ids = new ByteVocab().encode('Recurrent batch normalization, per time step.');
    model.resetState(2);
    model.forward(ids, 16, 2, true); // training updates the population statistics
    const file = join(dir, `norm-${norm}.safetensors`);
    saveCheckpoint(file, model, new ByteVocab());
    model.resetState(1);
    const a = Float32Array.from(model.forward(ids, ids.length, 1, false).subarray(0, ids.length * 256));
    const loaded = loadCheckpoint(file, be);
    assert.deepEqual(loaded.model.config, model.config);
    loaded.model.resetState(1);
    const b = loaded.model.forward(ids, ids.length, 1, false).subarray(0, ids.length * 256);
    assert.deepEqual(Array.from(b), Array.from(a));
  });
}

test('a header that asks for a huge model fails on the shapes before anything is allocated', () => {
  const small = new CharLM(be, { cell: 'lstm', vocabSize: 256, embedding: 4, hidden: 3, layers: 1, dropout: 0 }, 1);
  const tensors = new Map([...small.params].map(([k, p]) => [k, { shape: p.shape, data: p.data }]));
  const f = join(dir, 'huge.safetensors');
  const cfg = { cell: 'lstm', vocabSize: 256, embedding: 999_999, hidden: 999_999, layers: 1, dropout: 0 };
  writeFileSync(f, encodeSafetensors(tensors, { config: JSON.stringify(cfg), vocab_json: '{"kind":"bytes"}' }));
  const rss0 = process.memoryUsage().rss, t0 = Date.now();
  assert.throws(() => loadCheckpoint(f, be), (e: Error) => e.message.includes(f) && /encoder\.weight' has shape \[256,4\], the model needs \[256,999999\]/.test(e.message));
  assert.ok(Date.now() - t0 < 1000 && process.memoryUsage().rss - rss0 < 64 * 2 ** 20);
  writeFileSync(f, encodeSafetensors(tensors, { config: JSON.stringify({ ...cfg, embedding: 4, hidden: 3, layers: 999_999 }), vocab_json: '{"kind":"bytes"}' }));
  assert.throws(() => loadCheckpoint(f, be), /999999 layers, which need at least 3999999 tensors; the file has 7/);
  assert.ok(Date.now() - t0 < 1000 && process.memoryUsage().rss - rss0 < 64 * 2 ** 20);
  // a PyTorch-style file whose rnn_type is an Object.prototype name
  writeFileSync(f, encodeSafetensors(tensors, { rnn_type: 'constructor', vocab: 'bytes' }));
  assert.throws(() => loadCheckpoint(f, be), /unknown rnn_type 'constructor'/);
});

test('saving into a missing folder: a clear error naming the file, and no temporary left behind', () => {
  const model = new CharLM(be, { cell: 'gru', vocabSize: 256, embedding: 2, hidden: 2, layers: 1, dropout: 0 }, 1);
  const f = join(dir, 'no', 'such', 'folder', 'm.safetensors');
  assert.throws(() => saveCheckpoint(f, model, new ByteVocab()), (e: Error) => e.message === `cannot write '${f}': its folder does not exist`);
});
