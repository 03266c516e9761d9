// rnnkit sample: generate text from a checkpoint with a temperature.

import { type Command } from 'commander';
import { ByteVocab, Utf8Stream, type Vocab } from '../data/vocab.js';
import type { CharLM } from '../models/charlm.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { sampleIdsAsync } from '../train/sample.js';
import { addBackendOptions, backendFrom, int, num } from './options.js';
import type { BackendName } from '../backend/index.js';

export interface DecodeOptions { prime: string; length: number; temperature: number; seed: number }

/** Sample `length` tokens after `prime`, decoding as they come (onText gets each completed piece). */
export async function decodeSample(model: CharLM, vocab: Vocab, o: DecodeOptions, onText?: (s: string) => void): Promise<string> {
  const prime = vocab.encode(o.prime);
  if (prime.length === 0) throw new Error('--prime must not be empty');
  let out = '';
  const emit = (s: string): void => { if (s) { out += s; onText?.(s); } };
  const bytes = vocab instanceof ByteVocab ? new Utf8Stream() : null;
  const one = [0];
  for await (const id of sampleIdsAsync(model, { prime, length: o.length, temperature: o.temperature, seed: o.seed })) {
    if (bytes) emit(bytes.push(id));
    else { one[0] = id; emit(vocab.decode(one)); }
  }
  if (bytes) emit(bytes.flush());
  return o.prime + out;
}

export function registerSample(program: Command): void {
  const cmd = program.command('sample')
    .description('generate text from a trained checkpoint')
    .requiredOption('--checkpoint <file>', 'checkpoint written by rnnkit train (or a PyTorch word_language_model safetensors export)')
    .option('--temperature <t>', 'softmax temperature: p_i ∝ exp(log q_i / T); lower is more conservative', num((n) => n > 0, 'a number > 0'), 1.0)
    .option('--length <n>', 'tokens (bytes or characters) to generate', int(0), 500)
    .option('--prime <text>', 'text to start from', '\n')
    .option('--seed <n>', 'random seed (the same seed gives the same text)', int(0), 1);
  addBackendOptions(cmd).action(async (a: { checkpoint: string; temperature: number; length: number; prime: string; seed: number; backend: BackendName; threads: number }) => {
    const be = await backendFrom(a);
    const { model, vocab } = loadCheckpoint(a.checkpoint, be);
    process.stdout.write(a.prime);
    await decodeSample(model, vocab, { prime: a.prime, length: a.length, temperature: a.temperature, seed: a.seed }, (s) => process.stdout.write(s));
    process.stdout.write('\n');
    be.dispose();
  });
}
