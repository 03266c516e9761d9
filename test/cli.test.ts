// The command line as a user meets it: help, a short training run, sampling, eval, and clear errors.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'rnnkit-cli-'));

function rnnkit(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function assertCleanError(r: { code: number; err: string }, pattern: RegExp): void {
  assert.notEqual(r.code, 0, 'exit code is non-zero');
  assert.match(r.err, pattern);
  assert.doesNotMatch(r.err, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
}

// A small English text with real structure (Wikipedia-like), enough for a model to learn something.
const text = 'The quick brown fox jumps over the lazy dog. Anarchism is a political philosophy. '.repeat(60);
const trainFile = join(dir, 'train.txt');
writeFileSync(trainFile, text);
const ckpt = join(dir, 'model.safetensors');

test('help documents every command and flag', () => {
  const r = rnnkit('--help');
  assert.equal(r.code, 0);
  for (const c of ['train', 'sample', 'eval', 'bench']) assert.match(r.out, new RegExp(`\\b${c}\\b`));
  const t = rnnkit('train', '--help');
  for (const f of ['--data', '--valid', '--text', '--cell', '--hidden', '--layers', '--embedding', '--batch', '--bptt', '--lr', '--clip', '--dropout', '--minutes', '--epochs', '--seed', '--out', '--backend', '--threads']) {
    assert.ok(t.out.includes(f), `train --help mentions ${f}`);
  }
  const s = rnnkit('sample', '--help');
  for (const f of ['--checkpoint', '--temperature', '--length', '--prime', '--seed']) assert.ok(s.out.includes(f), `sample --help mentions ${f}`);
});

test('train, then sample (repeatable with a seed) and eval', () => {
  const r = rnnkit('train', '--data', trainFile, '--backend', 'js', '--hidden', '32', '--embedding', '16', '--batch', '4', '--bptt', '32',
    '--steps', '150', '--lr', '0.01', '--out', ckpt, '--json');
  assert.equal(r.code, 0, r.err);
  const done = JSON.parse(r.out.trim().split('\n').at(-1)!);
  assert.equal(done.event, 'done');
  assert.ok(done.best_valid_bpc < 3.5, `validation bpc ${done.best_valid_bpc} is well below uniform (8)`);
  assert.ok(readFileSync(ckpt).length > 1000);

  const a = rnnkit('sample', '--checkpoint', ckpt, '--backend', 'js', '--temperature', '0.8', '--length', '80', '--seed', '5', '--prime', 'The ');
  const b = rnnkit('sample', '--checkpoint', ckpt, '--backend', 'js', '--temperature', '0.8', '--length', '80', '--seed', '5', '--prime', 'The ');
  const c = rnnkit('sample', '--checkpoint', ckpt, '--backend', 'js', '--temperature', '0.8', '--length', '80', '--seed', '6', '--prime', 'The ');
  assert.equal(a.code, 0, a.err);
  assert.ok(a.out.startsWith('The '));
  assert.equal(a.out, b.out, 'same seed, same text');
  assert.notEqual(a.out, c.out, 'another seed, another text');

  const e = rnnkit('eval', '--checkpoint', ckpt, '--data', trainFile, '--backend', 'js', '--json');
  assert.equal(e.code, 0, e.err);
  const m = JSON.parse(e.out);
  assert.equal(m.chars, Buffer.byteLength(text) - 1);
  assert.ok(m.bpc < 3.5 && m.bpc > 0, `eval bpc ${m.bpc}`);
  assert.ok(Math.abs(m.perplexity - 2 ** m.bpc) < 1e-9);
});

test('bad input: one clear message, non-zero exit, no stack trace', () => {
  assertCleanError(rnnkit('train', '--data', join(dir, 'missing.txt'), '--backend', 'js'), /missing\.txt.*no such file/);
  const empty = join(dir, 'empty.txt');
  writeFileSync(empty, '');
  assertCleanError(rnnkit('train', '--data', empty, '--backend', 'js'), /empty\.txt.*empty/);
  assertCleanError(rnnkit('train', '--no-such-flag'), /unknown option '--no-such-flag'/);
  assertCleanError(rnnkit('sample', '--checkpoint', join(dir, 'nope.safetensors')), /nope\.safetensors.*no such file/);
  const bad = join(dir, 'bad.safetensors');
  writeFileSync(bad, Buffer.from('this is not a checkpoint at all'));
  assertCleanError(rnnkit('sample', '--checkpoint', bad), /bad\.safetensors/);
  assertCleanError(rnnkit('sample', '--checkpoint', ckpt, '--temperature', '0'), /temperature/);
  assertCleanError(rnnkit('sample', '--checkpoint', ckpt, '--temperature', '-1'), /temperature/);
  assertCleanError(rnnkit('train', '--hidden', 'abc'), /hidden/);
  assertCleanError(rnnkit('bench', '--config', 'XL-lstm'), /unknown bench config 'XL-lstm'/);
  assertCleanError(rnnkit('bench', '--kernels', '--backend', 'js'), /bench --kernels times the webgpu backend's kernels: add --backend webgpu \(got js/);
});
