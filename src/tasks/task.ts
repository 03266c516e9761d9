// The common shape of the five tasks: train on the bundled (or given) data and report the metric on the
// held-out split, evaluate a saved model, predict for new inputs.

import type { Backend } from '../backend/backend.js';

export interface TaskTrainOptions {
  /** Data file (default: the bundled data/tasks/sentences.tsv.gz). */
  data?: string;
  minutes: number;
  steps: number;
  seed: number;
  batch?: number;
  hidden?: number;
  embedding?: number;
  lr?: number;
  /** Model variant (e.g. the encoder of many-to-one: rnn | window | conv). */
  model?: string;
  /** Where the trained model is saved (null: not saved). */
  out: string | null;
  /** Cap on the training sentences (tests). */
  limit?: number;
  log?: (line: string) => void;
}

export interface TaskEvalOptions {
  checkpoint: string;
  /** Beam width for the generating tasks (1 = greedy). */
  beam?: number;
  data?: string;
  limit?: number;
}

export interface TaskResult {
  task: string;
  /** Name and value of the headline metric. */
  metric: string;
  value: number;
  /** The same metric for a trivial reference (chance, majority class, copying the input...). */
  baseline?: number;
  [k: string]: unknown;
}

export interface TaskDef {
  name: string;
  summary: string;
  /** What the default data and the metric are. */
  details: string;
  train(be: Backend, o: TaskTrainOptions): TaskResult;
  evaluate(be: Backend, o: TaskEvalOptions): TaskResult;
  predict(be: Backend, checkpoint: string, inputs: string[], o?: { beam?: number }): string[];
}
