// rnnkit eval: bits per character and perplexity of a checkpoint on a text.

import { Option, type Command } from 'commander';
import { loadText, type TextMode } from '../data/corpus.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { evaluateStream } from '../train/evaluate.js';
import { addBackendOptions, backendFrom } from './options.js';
import type { BackendName } from '../backend/index.js';

export function registerEval(program: Command): void {
  const cmd = program.command('eval')
    .description('bits per character and perplexity (2^bpc) of a checkpoint on a file, read as one stream from a zero state')
    .requiredOption('--checkpoint <file>', 'checkpoint to evaluate')
    .requiredOption('--data <file>', 'text to evaluate on (.gz allowed)')
    .addOption(new Option('--text <mode>', 'raw bytes of the file, or clean article text from a wiki dump').choices(['raw', 'clean']).default('raw'))
    .option('--json', 'one JSON line {"bpc", "perplexity", "chars"}', false);
  addBackendOptions(cmd).action(async (a: { checkpoint: string; data: string; text: TextMode; json: boolean; backend: BackendName; threads: number }) => {
    const be = await backendFrom(a);
    const { model, vocab } = loadCheckpoint(a.checkpoint, be);
    const ids = vocab.encode(await loadText(a.data, a.text));
    if (ids.length < 2) throw new Error(`data file '${a.data}' has fewer than 2 tokens to evaluate`);
    const r = await evaluateStream(model, ids);
    if (a.json) console.log(JSON.stringify({ bpc: r.bpc, perplexity: r.perplexity, chars: r.chars }));
    else console.log(`${a.data}: ${r.bpc.toFixed(4)} bits per char, perplexity ${r.perplexity.toFixed(3)}, ${r.chars.toLocaleString()} chars predicted`);
    be.dispose();
  });
}
