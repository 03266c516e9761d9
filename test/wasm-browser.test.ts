// The browser's wasm backend (src/backend/wasm-browser.ts), run in Node: built from the kernels' bytes on
// one thread, it must give the reference backend's results on a CharLM forward/backward, and fall back to
// JsBackend when the kernels cannot run.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import v8 from 'node:v8';
import type { Backend } from '../src/backend/backend.js';
import { JsBackend } from '../src/backend/js.js';
import { createBrowserBackend, hasWasmSimd } from '../src/backend/wasm-browser.js';
import { CharLM, type CellKind } from '../src/models/charlm.js';
import { Rng } from '../src/util/rng.js';
import { checkpointFromBytes, checkpointToBytes } from '../src/train/checkpoint.js';
import { ByteVocab } from '../src/data/vocab.js';

const wasmDir = new URL('../wasm/', import.meta.url); // dist/wasm next to dist/test
const simdFile = new URL('rnnkit-simd.wasm', wasmDir);
const relaxedFile = new URL('rnnkit-relaxed.wasm', wasmDir);
const built = existsSync(simdFile);

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 1e-3;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d / scale;
}

function run(be: Backend, cell: CellKind, ids: Int32Array, targets: Int32Array, T: number, B: number) {
  const model = new CharLM(be, { cell, vocabSize: 40, embedding: 12, hidden: 24, layers: 2, dropout: 0 }, 7);
  model.resetState(B);
  const logits = Float32Array.from(model.forward(ids, T, B, true));
  const loss = model.backward(targets);
  const grads = new Map<string, Float32Array>();
  for (const [name, p] of model.params) grads.set(name, Float32Array.from(p.grad));
  return { logits, loss, grads, h: Float32Array.from(model.h) };
}

test('hasWasmSimd: Node 20 runs WebAssembly SIMD', () => {
  assert.equal(hasWasmSimd(), true);
});

test('browser wasm backend: CharLM forward/backward equals the JS reference', { skip: built ? false : 'dist/wasm not built' }, async () => {
  const simd = readFileSync(simdFile);
  for (const useRelaxed of [false, 'auto'] as const) {
    // Node 20 validates the relaxed-SIMD (FMA) build only with this flag (browsers have it on by default)
    if (useRelaxed === 'auto') v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    const { backend, kind, fallbackReason } = await createBrowserBackend({
      simd, relaxed: () => Promise.resolve(readFileSync(relaxedFile)), useRelaxed, require: 'wasm',
    });
    assert.equal(fallbackReason, null);
    assert.match(kind, /^wasm-(simd|relaxed)$/);
    assert.equal(kind, useRelaxed === false ? 'wasm-simd' : 'wasm-relaxed');
    assert.equal(backend.threads, 1);
    const ref = new JsBackend('float32');
    const rng = new Rng(3);
    const T = 9, B = 3;
    const ids = Int32Array.from({ length: T * B }, () => rng.nextU32() % 40);
    const targets = Int32Array.from({ length: T * B }, () => rng.nextU32() % 40);
    for (const cell of ['lstm', 'gru', 'rnn'] as CellKind[]) {
      const a = run(backend, cell, ids, targets, T, B);
      const b = run(ref, cell, ids, targets, T, B);
      assert.ok(Math.abs(a.loss - b.loss) < 1e-5 * Math.abs(b.loss), `${kind} ${cell}: loss ${a.loss} vs ${b.loss}`);
      assert.ok(maxRel(a.logits, b.logits) < 1e-5, `${kind} ${cell}: logits`);
      assert.ok(maxRel(a.h, b.h) < 1e-5, `${kind} ${cell}: carried state`);
      for (const [name, g] of b.grads) assert.ok(maxRel(a.grads.get(name)!, g) < 1e-4, `${kind} ${cell}: gradient of ${name}`);
    }
    backend.dispose();
  }
});

test('browser wasm backend: a checkpoint round-trips through bytes onto it', { skip: built ? false : 'dist/wasm not built' }, async () => {
  const { backend } = await createBrowserBackend({ simd: readFileSync(simdFile), require: 'wasm' });
  const ref = new JsBackend('float32');
  const model = new CharLM(ref, { cell: 'gru', vocabSize: 256, embedding: 8, hidden: 16, layers: 1, dropout: 0 }, 5);
  const bytes = checkpointToBytes(model, new ByteVocab());
  const ck = checkpointFromBytes(bytes, 'in-memory', backend);
  assert.equal(ck.model.config.hidden, 16);
  const ids = new ByteVocab().encode('Hello, world');
  const la = Float32Array.from(ck.model.forward(ids, ids.length, 1, false));
  model.resetState(1);
  const lb = model.forward(ids, ids.length, 1, false);
  assert.ok(maxRel(la, lb) < 1e-5);
  assert.throws(() => checkpointFromBytes(bytes.subarray(0, 20), 'cut.safetensors', backend), /bad checkpoint 'cut.safetensors'/);
  backend.dispose();
});

test('browser wasm backend: falls back to JsBackend when the kernels cannot run', async () => {
  const junk = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 99]);
  const r = await createBrowserBackend({ simd: junk });
  assert.equal(r.kind, 'js');
  assert.ok(r.backend instanceof JsBackend);
  assert.match(r.fallbackReason!, /validate/);
  await assert.rejects(createBrowserBackend({ simd: junk, require: 'wasm' }), /cannot run here/);
});
