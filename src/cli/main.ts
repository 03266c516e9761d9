#!/usr/bin/env node
// rnnkit command line: train, sample, eval, bench, export, task, ngrams.

import { Command, CommanderError } from 'commander';
import { registerBench } from './bench.js';
import { registerEval } from './eval.js';
import { registerExport } from './export.js';
import { registerSample } from './sample.js';
import { registerTrain } from './train.js';
import { registerTask } from './task.js';
import { registerNgrams } from './ngrams.js';

const program = new Command();
program
  .name('rnnkit')
  .description('Recurrent neural networks for sequences: train a character-level language model on Wikipedia, sample from it, evaluate it, benchmark the engine.')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerTrain(program);
registerSample(program);
registerEval(program);
registerBench(program);
registerExport(program);
registerTask(program);
registerNgrams(program);

try {
  await program.parseAsync(process.argv);
  process.exit(process.exitCode ?? 0);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode); // commander already printed the message
  process.stderr.write(`rnnkit: error: ${(e as Error).message}\n`);
  if (process.env.RNNKIT_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
}

