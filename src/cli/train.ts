// rnnkit train: a character-level language model on Wikipedia (the bundled enwik8 sample by default).

import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { NormKind } from '../norm/norm.js';
import cliProgress from 'cli-progress';
import { defaultDataPath, loadText, splitTrainValid, type TextMode } from '../data/corpus.js';
import { buildVocab, type VocabKind } from '../data/vocab.js';
import type { CellKind } from '../models/charlm.js';
import { Trainer } from '../train/trainer.js';
import { lmBaseline } from '../models/conv.js';
import { lastCheckpointPath, loadCheckpoint, restoreTrainingState } from '../train/checkpoint.js';
import { decodeSample } from './sample.js';
import { addBackendOptions, backendFrom, int, num } from './options.js';
import type { BackendName } from '../backend/index.js';

interface TrainArgs {
  model: 'rnn' | 'window' | 'conv';
  data?: string; valid?: string; text: TextMode; vocab: VocabKind; cell: CellKind; hidden: number; layers: number;
  embedding: number; batch: number; bptt: number; lr: number; clip: number; dropout: number; optimizer: 'adam' | 'sgd';
  minutes: number; epochs: number; steps: number; evalEvery: number; seed: number; out: string; samples: boolean;
  resume?: string; backend: BackendName; threads: number; json: boolean;
  norm: NormKind; dilation?: number[]; stride?: number[]; bidirectional: boolean;
}

const intList = (name: string) => (v: string): number[] => {
  const a = v.split(',').map((x) => Number(x.trim()));
  if (a.length === 0 || a.some((n) => !Number.isInteger(n) || n < 1)) throw new InvalidArgumentError(`${name}: expected positive integers (one, or one per layer, comma-separated), got '${v}'`);
  return a;
};

export function registerTrain(program: Command): void {
  const cmd = program.command('train')
    .description('train a character-level language model (default: on the bundled Wikipedia sample, about 8 minutes)')
    .option('--data <file>', 'training text: a MediaWiki XML dump (enwik8 format) or any text file, .gz allowed (default: bundled enwik8 sample)')
    .option('--valid <file>', 'validation text (default: the last 5% of --data)')
    .addOption(new Option('--text <mode>', 'raw bytes of the file, or clean article text from a wiki dump').choices(['raw', 'clean']).default('raw'))
    .addOption(new Option('--vocab <kind>', 'bytes (V=256, the enwik8 convention) or chars (code points seen in the data)').choices(['bytes', 'chars']).default('bytes'))
    .addOption(new Option('--cell <cell>', 'recurrent cell').choices(['lstm', 'gru', 'rnn', 'rnn_relu']).default('lstm'))
    .addOption(new Option('--model <kind>', 'rnn (the --cell network), or a baseline: window (fixed-window MLP) or conv (dilated causal convolutions)').choices(['rnn', 'window', 'conv']).default('rnn'))
    .option('--hidden <n>', 'hidden units per layer', int(1), 256)
    .option('--layers <n>', 'stacked recurrent layers', int(1), 1)
    .option('--embedding <n>', 'embedding size', int(1), 64)
    .option('--batch <n>', 'sequences per batch', int(1), 32)
    .option('--bptt <n>', 'steps of back-propagation through time (state carried across batches)', int(1), 128)
    .option('--lr <x>', 'learning rate', num((n) => n > 0, 'a positive number'), 2e-3)
    .option('--clip <x>', 'global gradient-norm clipping (0 = off)', num((n) => n >= 0, 'a number >= 0'), 5)
    .option('--dropout <x>', 'dropout between layers and before the decoder', num((n) => n >= 0 && n < 1, 'a number in [0, 1)'), 0)
    .addOption(new Option('--norm <kind>', 'normalization in the recurrent layers: layer norm, recurrent batch norm (per-step statistics), weight norm').choices(['none', 'batch', 'layer', 'weight']).default('none'))
    .option('--dilation <d>', 'dilation of the recurrent layers: one number, or one per layer (e.g. 1,2,4)', intList('--dilation'))
    .option('--stride <s>', 'stride over time of the recurrent layers: one number, or one per layer (e.g. 1,2)', intList('--stride'))
    .option('--bidirectional', 'bidirectional layers (not for the language model, which must stay causal: use `rnnkit task synced`)', false)
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(['adam', 'sgd']).default('adam'))
    .option('--minutes <x>', 'time budget in minutes (0 = none)', num((n) => n >= 0, 'a number >= 0'), 8)
    .option('--epochs <n>', 'passes over the data (0 = none; with --minutes, whichever ends first)', int(0), 0)
    .option('--steps <n>', 'optimizer steps (0 = none)', int(0), 0)
    .option('--eval-every <s>', 'seconds between validations', num((n) => n > 0, 'a positive number'), 60)
    .option('--seed <n>', 'random seed', int(0), 1)
    .option('--out <file>', 'where the best checkpoint is saved; the latest state goes to <stem>.last.safetensors (at every validation, at the end, and on Ctrl-C/SIGTERM)', 'checkpoints/charlm.safetensors')
    .option('--resume <file>', 'continue exactly from a .last checkpoint (model, optimizer, RNG, data position, carried state; the saved run\'s flags unless given again)')
    .option('--no-samples', 'do not print samples at the end')
    .option('--json', 'print results as JSON lines instead of a progress bar', false);
  addBackendOptions(cmd).action(async (a: TrainArgs, c: Command) => train(a, c));
}

/** Flags a resumed run takes from the saved run unless they are given again on the command line. */
const RESUMED_FLAGS = ['data', 'valid', 'out', 'text', 'vocab', 'batch', 'bptt', 'lr', 'clip', 'optimizer', 'minutes', 'epochs', 'steps', 'evalEvery', 'seed'] as const;

async function train(a: TrainArgs, cmd: Command): Promise<void> {
  if (a.bidirectional) throw new Error('--bidirectional: a language model predicts the next character, so it must not see the future; bidirectional layers are for tagging and classification (rnnkit task synced / many-to-one)');
  const perLayer = (name: string, v: number[] | undefined): number[] | undefined => {
    if (!v) return undefined;
    if (v.length === 1) return Array(a.layers).fill(v[0]);
    if (v.length !== a.layers) throw new Error(`${name} has ${v.length} values for ${a.layers} layers`);
    return v;
  };
  const be = await backendFrom(a);
  const resumed = a.resume ? loadCheckpoint(a.resume, be) : null;
  const saved = resumed?.trainState?.args;
  const flags = a as unknown as Record<string, unknown>;
  for (const k of RESUMED_FLAGS) {
    const v = saved?.[k];
    if (v !== undefined && v !== null && cmd.getOptionValueSource(k) !== 'cli' && (flags[k] === undefined || typeof v === typeof flags[k])) flags[k] = v;
  }
  const file = a.data ?? defaultDataPath();
  const log = (s: string): void => { if (!a.json) process.stderr.write(`${s}\n`); };
  const text = await loadText(file, a.text);
  let trainText: Uint8Array, validText: Uint8Array | null;
  if (a.valid) { trainText = text; validText = await loadText(a.valid, a.text); }
  else ({ train: trainText, valid: validText } = splitTrainValid(text, 0.05));
  const vocab = resumed?.vocab ?? buildVocab(a.vocab, trainText);
  const trainIds = vocab.encode(trainText), validIds = validText ? vocab.encode(validText) : null;
  const config = resumed?.model.config ?? {
    cell: a.cell, vocabSize: vocab.size, embedding: a.embedding, hidden: a.hidden, layers: a.layers, dropout: a.dropout,
    norm: a.norm, dilation: perLayer('--dilation', a.dilation), stride: perLayer('--stride', a.stride),
  };
  if (a.out) mkdirSync(dirname(a.out), { recursive: true });
  const trainer = new Trainer(be, config, vocab, trainIds, validIds, {
    batch: a.batch, bptt: a.bptt, lr: a.lr, clip: a.clip, optimizer: a.optimizer, minutes: a.minutes, epochs: a.epochs,
    maxSteps: a.steps, evalSeconds: a.evalEvery, seed: a.seed, out: a.out,
  }, resumed?.model ?? lmBaseline(be, a.model, vocab.size, { embedding: a.embedding, hidden: cmd.getOptionValueSource('hidden') === 'cli' ? a.hidden : undefined }, a.seed));
  if (resumed?.trainState) {
    trainer.state = { ...resumed.trainState };
    restoreTrainingState(a.resume!, resumed, trainer.optimizer, a.batch);
    log(`resumed from ${a.resume}: step ${trainer.state.step}, epoch ${trainer.state.epoch}`);
  }
  trainer.state.args = Object.fromEntries(RESUMED_FLAGS.map((k) => [k, ['data', 'valid', 'out'].includes(k) && a[k] ? resolve(a[k] as string) : a[k]]));
  log(`rnnkit train: ${file} (${a.text}), ${trainIds.length.toLocaleString()} train / ${(validIds?.length ?? 0).toLocaleString()} valid tokens, vocab ${vocab.kind} (${vocab.size})`);
  const extras = [config.norm && config.norm !== 'none' ? `${config.norm} norm` : '', config.dilation ? `dilation ${config.dilation}` : '', config.stride ? `stride ${config.stride}` : ''].filter(Boolean).join(', ');
  log(`model: ${a.model !== 'rnn' ? `${a.model} baseline` : `${config.layers}x${config.hidden} ${config.cell}${extras ? ` (${extras})` : ''}`}, embedding ${config.embedding}, ${countParams(trainer)} parameters; batch ${a.batch}, bptt ${a.bptt}, ${a.optimizer} lr ${a.lr}, clip ${a.clip}; backend ${be.name} (${be.threads} thread${be.threads > 1 ? 's' : ''})`);

  const tty = !a.json && process.stderr.isTTY;
  const bar = tty ? new cliProgress.SingleBar({
    format: 'train |{bar}| {percentage}% | step {step} | loss {loss} | {rate} chars/s | ETA {eta_formatted}',
    hideCursor: true, etaBuffer: 50,
  }, cliProgress.Presets.shades_classic) : null;
  bar?.start(1000, 0, { step: 0, loss: '-', rate: '-' });
  let lastLine = 0, interrupted = '';
  const onSignal = (sig: string): void => { interrupted = sig; trainer.stop(); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const state = await trainer.run({
    progress(p) {
      const loss = (p.loss / Math.LN2).toFixed(3);
      if (bar) bar.update(Math.round(p.fraction * 1000), { step: p.step, loss: `${loss} bpc`, rate: Math.round(p.charsPerSec).toLocaleString() });
      else if (!a.json && p.seconds - lastLine >= 15) { lastLine = p.seconds; log(`step ${p.step}  epoch ${p.epoch}  train ${loss} bpc  ${Math.round(p.charsPerSec)} chars/s  ${p.seconds.toFixed(0)} s`); }
    },
    validated(r) {
      const line = `valid: step ${r.step}, ${r.bpc.toFixed(4)} bpc, perplexity ${r.perplexity.toFixed(3)}${r.best ? ' (best, saved)' : ''}`;
      if (a.json) console.log(JSON.stringify({ event: 'valid', step: r.step, seconds: r.seconds, bpc: r.bpc, perplexity: r.perplexity, best: r.best }));
      else if (bar) { bar.stop(); log(line); bar.start(1000, 0, { step: r.step, loss: '-', rate: '-' }); }
      else log(line);
    },
  });
  bar?.stop();
  if (interrupted && a.out) log(`${interrupted}: stopped at step ${state.step}; latest state saved to ${lastCheckpointPath(a.out)} (continue with --resume ${lastCheckpointPath(a.out)})`);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  const rate = state.chars / Math.max(state.seconds - (state.validSeconds ?? 0), 1e-9); // training only
  const summary = { event: interrupted ? 'interrupted' : 'done', steps: state.step, epochs: state.epoch, seconds: state.seconds, chars: state.chars, chars_per_s: rate, best_valid_bpc: state.bestBpc, best_valid_perplexity: state.bestBpc === null ? null : 2 ** state.bestBpc, checkpoint: a.out, last: a.out ? lastCheckpointPath(a.out) : null };
  if (a.json) console.log(JSON.stringify(summary));
  else {
    console.log(`trained ${state.step} steps (${state.chars.toLocaleString()} chars) in ${state.seconds.toFixed(0)} s: ${Math.round(rate).toLocaleString()} chars/s`);
    if (state.bestBpc !== null) console.log(`validation: ${state.bestBpc.toFixed(4)} bits per char, perplexity ${(2 ** state.bestBpc).toFixed(3)} (best)`);
    console.log(`checkpoint: ${a.out} (best), ${lastCheckpointPath(a.out)} (latest, for --resume)`);
  }
  if (a.samples && !a.json && !interrupted && a.model === 'rnn') {
    const best = loadCheckpoint(a.out, be);
    for (const t of [0.5, 0.8, 1.0]) {
      console.log(`\n--- sample, temperature ${t} ---`);
      console.log(await decodeSample(best.model, best.vocab, { prime: '\n', length: 300, temperature: t, seed: a.seed }));
    }
  }
  be.dispose();
}

function countParams(t: Trainer): string {
  return t.model.parameters().reduce((s, p) => s + p.size, 0).toLocaleString();
}
