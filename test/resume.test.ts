// Resuming: an interrupted-and-resumed run equals an uninterrupted one bit for bit (every loss, every weight,
// the optimizer state); SIGINT/SIGTERM during `rnnkit train` saves the latest state and exits cleanly.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../src/backend/backend.js';
import { JsBackend } from '../src/backend/js.js';
import { testBackends } from './backends.js';
import { ByteVocab } from '../src/data/vocab.js';
import { decodeSafetensors } from '../src/io/safetensors.js';
import type { CharLMConfig } from '../src/models/charlm.js';
import { lastCheckpointPath, loadCheckpoint, restoreTrainingState, STATE_C, STATE_H } from '../src/train/checkpoint.js';
import { Trainer, type TrainOptions } from '../src/train/trainer.js';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'rnnkit-resume-'));
const be = new JsBackend('float32');
const vocab = new ByteVocab();
// 310 bytes at batch 3 = 103 rows; bptt 7 -> 15 steps per epoch, so 20 steps cross an epoch boundary.
const text = 'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness. '.repeat(3).slice(0, 310);
const ids = vocab.encode(text);
const trainIds = ids.subarray(0, 250), validIds = ids.subarray(250);
const config: CharLMConfig = { cell: 'lstm', vocabSize: 256, embedding: 6, hidden: 10, layers: 2, dropout: 0.3 };
const opts = (maxSteps: number, out: string): TrainOptions => ({
  batch: 3, bptt: 7, lr: 5e-3, clip: 1, optimizer: 'adam', minutes: 0, epochs: 0, maxSteps, evalSeconds: 1e9, seed: 4, out,
});

/** Run `trainer` to its budget, recording the loss of every step. */
async function lossesOf(trainer: Trainer): Promise<number[]> {
  const losses: number[] = [];
  const step = trainer.step.bind(trainer);
  trainer.step = () => { const l = step(); losses.push(l); return l; };
  await trainer.run();
  return losses;
}

type Tamper = 'none' | 'optimizer' | 'rng' | 'carried';

async function resumed(from: string, out: string, tamper: Tamper): Promise<{ losses: number[]; trainer: Trainer }> {
  const ck = loadCheckpoint(from, be);
  const trainer = new Trainer(be, ck.model.config, ck.vocab, trainIds, validIds, opts(20, out), ck.model);
  trainer.state = { ...ck.trainState! };
  restoreTrainingState(from, ck, trainer.optimizer, 3);
  if (tamper === 'optimizer') for (const b of trainer.optimizer.state().slots.exp_avg) b.fill(0);
  if (tamper === 'rng') trainer.model.dropoutRngState = trainer.model.dropoutRngState.map((s) => s.map((w) => (w + 1) >>> 0));
  if (tamper === 'carried') trainer.model.h.fill(0);
  return { losses: await lossesOf(trainer), trainer };
}

test('20 steps straight == 10 steps + save + resume 10 steps: every loss and weight bit-identical (LSTM, dropout 0.3, epoch boundary)', async () => {
  await exactResume(be, 'js');
});

test('the same on the WebAssembly backend (1 and 2 threads), where it builds', async (t) => {
  const wasm = (await testBackends()).filter((b) => b.label.startsWith('wasm'));
  if (wasm.length === 0) { t.skip('wasm backend not available'); return; }
  for (const b of wasm) {
    const wbe = await b.make();
    try { await exactResume(wbe, b.label.replace(/[^a-z0-9]+/g, '-')); } finally { wbe.dispose(); }
  }
});

async function exactResume(be: Backend, tag: string): Promise<void> {
  const resumed = async (from: string, out: string): Promise<{ losses: number[]; trainer: Trainer }> => {
    const ck = loadCheckpoint(from, be);
    const trainer = new Trainer(be, ck.model.config, ck.vocab, trainIds, validIds, opts(20, out), ck.model);
    trainer.state = { ...ck.trainState! };
    restoreTrainingState(from, ck, trainer.optimizer, 3);
    return { losses: await lossesOf(trainer), trainer };
  };
  const straight = new Trainer(be, config, vocab, trainIds, validIds, opts(20, join(dir, `${tag}-a.safetensors`)));
  const a = await lossesOf(straight);
  assert.equal(a.length, 20);
  assert.ok(straight.state.epoch >= 1, 'the run crosses an epoch boundary');
  const first = new Trainer(be, config, vocab, trainIds, validIds, opts(10, join(dir, `${tag}-b.safetensors`)));
  const b1 = await lossesOf(first);
  const last = lastCheckpointPath(join(dir, `${tag}-b.safetensors`));
  assert.ok(existsSync(last), 'the run leaves a .last checkpoint');
  const { losses: b2, trainer: second } = await resumed(last, join(dir, `${tag}-c.safetensors`));
  assert.equal(b2.length, 10);
  assert.deepEqual([...b1, ...b2], a); // exact: Object.is on every float
  for (const [name, p] of straight.model.params) assert.deepEqual(second.model.params.get(name)!.data, p.data, name);
  const sa = straight.optimizer.state(), sb = second.optimizer.state();
  assert.equal(sb.step, sa.step);
  assert.deepEqual(sb.slots, sa.slots);
  assert.deepEqual(second.model.h, straight.model.h);
  assert.deepEqual(second.model.c, straight.model.c);
  assert.deepEqual([second.state.step, second.state.epoch, second.state.position], [straight.state.step, straight.state.epoch, straight.state.position]);
}

test('each piece of saved state matters: without the optimizer moments, the dropout RNG or the carried state the losses differ', async () => {
  const first = new Trainer(be, config, vocab, trainIds, validIds, opts(10, join(dir, 'd.safetensors')));
  await lossesOf(first);
  const last = lastCheckpointPath(join(dir, 'd.safetensors'));
  const good = (await resumed(last, join(dir, 'e.safetensors'), 'none')).losses;
  for (const tamper of ['optimizer', 'rng', 'carried'] as const) {
    const bad = (await resumed(last, join(dir, `f-${tamper}.safetensors`), tamper)).losses;
    assert.notDeepEqual(bad, good, `tampering with ${tamper} changes the run`);
  }
});

test('a training checkpoint holds the carried state and optimizer tensors; resuming with another --batch or optimizer is a clear error', () => {
  const last = lastCheckpointPath(join(dir, 'js-b.safetensors'));
  const st = decodeSafetensors(readFileSync(last), last);
  assert.deepEqual(st.tensors.get(STATE_H)!.shape, [2 * 3 * 10]);
  assert.deepEqual(st.tensors.get(STATE_C)!.shape, [2 * 3 * 10]);
  assert.ok(st.tensors.has('optimizer.exp_avg.rnn.weight_hh_l1') && st.tensors.has('optimizer.exp_avg_sq.decoder.bias'));
  const ck = loadCheckpoint(last, be);
  const t = new Trainer(be, ck.model.config, vocab, trainIds, null, opts(20, ''), ck.model);
  assert.throws(() => restoreTrainingState(last, ck, t.optimizer, 5), (e: Error) => e.message.includes(last) && /batch size 3.*--batch 5/.test(e.message));
  const sgd = new Trainer(be, ck.model.config, vocab, trainIds, null, { ...opts(20, ''), optimizer: 'sgd' }, ck.model);
  assert.throws(() => restoreTrainingState(last, ck, sgd.optimizer, 3), /exp_avg.*same --optimizer/);
});

function rnnkit(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const dataFile = join(dir, 'data.txt');
writeFileSync(dataFile, 'The quick brown fox jumps over the lazy dog; a stitch in time saves nine. '.repeat(20));
const trainFlags = ['--data', dataFile, '--backend', 'js', '--hidden', '12', '--embedding', '5', '--layers', '2', '--cell', 'gru',
  '--batch', '4', '--bptt', '9', '--dropout', '0.25', '--eval-every', '1000', '--json', '--no-samples'];

test('rnnkit train --steps 20 == --steps 10, then --resume <out>.last.safetensors (the saved flags): same final state bit for bit', () => {
  const outA = join(dir, 'cli-a', 'm.safetensors'), outB = join(dir, 'cli-b', 'm.safetensors');
  assert.equal(rnnkit('train', ...trainFlags, '--steps', '20', '--out', outA).code, 0);
  const r1 = rnnkit('train', ...trainFlags, '--steps', '10', '--out', outB);
  assert.equal(r1.code, 0, r1.err);
  // only --resume and --steps: data, batch, bptt, lr, seed, out... come from the checkpoint
  const r2 = rnnkit('train', '--resume', lastCheckpointPath(outB), '--steps', '20', '--backend', 'js', '--json', '--no-samples');
  assert.equal(r2.code, 0, r2.err);
  assert.equal(JSON.parse(r2.out.trim().split('\n').pop()!).steps, 20);
  const a = decodeSafetensors(readFileSync(lastCheckpointPath(outA)), 'a'), b = decodeSafetensors(readFileSync(lastCheckpointPath(outB)), 'b');
  assert.deepEqual([...b.tensors.keys()].sort(), [...a.tensors.keys()].sort());
  for (const [k, t] of a.tensors) assert.deepEqual(b.tensors.get(k)!.data, t.data, k);
  const sa = JSON.parse(a.metadata.train_state), sb = JSON.parse(b.metadata.train_state);
  for (const k of ['step', 'epoch', 'position', 'rng']) assert.deepEqual(sb[k], sa[k], k);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`${signal} during rnnkit train saves the latest state, exits 0, and the run resumes from it`, async () => {
    const out = join(dir, `sig-${signal}`, 'm.safetensors');
    const child = spawn(process.execPath, [main, 'train', ...trainFlags.filter((f) => f !== '--json'), '--minutes', '10', '--out', out]);
    let err = '', stdout = '';
    child.stderr.on('data', (d) => { err += d; });
    child.stdout.on('data', (d) => { stdout += d; });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    // wait until training has started, then let it run a little
    for (let i = 0; i < 300 && !err.includes('model:'); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 700));
    const t0 = Date.now();
    child.kill(signal);
    const code = await exited;
    assert.equal(code, 0, err);
    assert.ok(Date.now() - t0 < 10_000, 'exits promptly');
    const last = lastCheckpointPath(out);
    assert.ok(err.includes(`${signal}: stopped at step`) && err.includes(last), err);
    const ck = loadCheckpoint(last, be);
    assert.ok(ck.trainState!.step > 0);
    assert.match(stdout, /trained \d+ steps/);
    const r = rnnkit('train', '--resume', last, '--steps', String(ck.trainState!.step + 3), '--backend', 'js', '--json', '--no-samples');
    assert.equal(r.code, 0, r.err);
    assert.equal(JSON.parse(r.out.trim().split('\n').pop()!).steps, ck.trainState!.step + 3);
  });
}
