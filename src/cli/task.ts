// rnnkit task: the five shapes of sequence problems, each trainable on bundled Wikipedia data.
//   rnnkit task --list
//   rnnkit task <name> [train] [--minutes X] [--json] [--out FILE]
//   rnnkit task <name> eval --checkpoint FILE
//   rnnkit task <name> predict --checkpoint FILE "text" ...

import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Argument, type Command } from 'commander';
import { TASKS, findTask, type TaskResult } from '../tasks/index.js';
import { addBackendOptions, backendFrom, int, num } from './options.js';
import type { BackendName } from '../backend/index.js';

interface TaskArgs {
  list: boolean; data?: string; minutes: number; steps: number; seed: number; batch?: number; hidden?: number;
  embedding?: number; lr?: number; model?: string; out?: string; checkpoint?: string; beam: number; json: boolean;
  backend: BackendName; threads: number;
}

export function registerTask(program: Command): void {
  const cmd = program.command('task')
    .description('the five task shapes (one-to-one, one-to-many, many-to-one, many-to-many, synced) on bundled Wikipedia data')
    .argument('[name]', `task: ${TASKS.map((t) => t.name).join(', ')}`)
    .addArgument(new Argument('[action]', 'train, eval or predict').choices(['train', 'eval', 'predict']).default('train'))
    .argument('[inputs...]', 'predict: the inputs (default: lines of stdin)')
    .option('--list', 'list the tasks', false)
    .option('--data <file>', 'data file: lang<TAB>sentence lines, .gz allowed (default: data/tasks/sentences.tsv.gz)')
    .option('--minutes <x>', 'training time budget in minutes', num((n) => n >= 0, 'a number >= 0'), 1)
    .option('--steps <n>', 'optimizer steps (0 = no limit; with --minutes, whichever ends first)', int(0), 0)
    .option('--seed <n>', 'random seed', int(0), 1)
    .option('--batch <n>', 'batch size', int(1))
    .option('--hidden <n>', 'hidden units', int(1))
    .option('--embedding <n>', 'embedding size', int(1))
    .option('--lr <x>', 'Adam learning rate', num((n) => n > 0, 'a positive number'))
    .option('--model <kind>', 'model variant (many-to-one: rnn | window | conv; one-to-one: mean | sum | sqrt bag of n-grams, or words)')
    .option('--out <file>', 'train: where the model is saved', undefined)
    .option('--checkpoint <file>', 'eval / predict: a model saved by train --out')
    .option('--beam <k>', 'eval / predict of many-to-many: beam search width (1 = greedy)', int(1), 1)
    .option('--json', 'print the result as one JSON object', false);
  addBackendOptions(cmd).action(async (name: string | undefined, action: string, inputs: string[], a: TaskArgs) => {
    if (a.list || !name) {
      if (a.json) console.log(JSON.stringify(TASKS.map((t) => ({ name: t.name, summary: t.summary, details: t.details }))));
      else for (const t of TASKS) console.log(`${t.name.padEnd(13)} ${t.summary}\n${' '.repeat(14)}${t.details}`);
      return;
    }
    const task = findTask(name);
    const be = await backendFrom(a);
    const log = (s: string): void => { if (!a.json) process.stderr.write(`${s}\n`); };
    try {
      if (action === 'train') {
        if (a.out) mkdirSync(dirname(a.out), { recursive: true });
        log(`rnnkit task ${task.name}: ${task.summary}; backend ${be.name}`);
        const r = task.train(be, { data: a.data, minutes: a.minutes, steps: a.steps, seed: a.seed, batch: a.batch, hidden: a.hidden, embedding: a.embedding, lr: a.lr, model: a.model, out: a.out ?? null, log });
        print(r, a.json);
      } else {
        if (!a.checkpoint) throw new Error(`task ${action} needs --checkpoint FILE (a model saved by 'rnnkit task ${task.name} train --out FILE')`);
        if (action === 'eval') print(task.evaluate(be, { checkpoint: a.checkpoint, data: a.data, beam: a.beam }), a.json);
        else {
          const lines = inputs.length ? inputs : readFileSync(0, 'utf8').split('\n').filter((l) => l.trim());
          const out = task.predict(be, a.checkpoint, lines, { beam: a.beam });
          if (a.json) console.log(JSON.stringify(lines.map((input, i) => ({ input, output: out[i] }))));
          else out.forEach((o) => console.log(o));
        }
      }
    } finally {
      be.dispose();
    }
  });
}

function print(r: TaskResult, json: boolean): void {
  if (json) { const { confusionText: _c, ...rest } = r; console.log(JSON.stringify(rest)); return; }
  const fmt = (v: number): string => (Number.isInteger(v) ? String(v) : Math.abs(v) < 10 ? v.toFixed(4) : v.toFixed(1));
  console.log(`${r.task}: ${r.metric} ${fmt(r.value)}${r.baseline !== undefined ? ` (reference: ${fmt(r.baseline)})` : ''}`);
  for (const [k, v] of Object.entries(r)) {
    if (['task', 'metric', 'value', 'baseline', 'confusion', 'confusionText', 'samples'].includes(k)) continue;
    console.log(`  ${k}: ${typeof v === 'number' ? fmt(v) : JSON.stringify(v)}`);
  }
  if (typeof r.confusionText === 'string') console.log(r.confusionText);
  if (Array.isArray(r.samples)) for (const s of r.samples) console.log(`  ${JSON.stringify(s)}`);
}
