// The five task shapes of `rnnkit task`.

import { oneToOne } from './bagclassifier.js';
import { manyToOne } from './langid.js';
import { synced } from './synced.js';
import { oneToMany } from './speller.js';
import { manyToMany } from './seq2seq.js';
import type { TaskDef } from './task.js';

export const TASKS: TaskDef[] = [oneToOne, oneToMany, manyToOne, manyToMany, synced];

export function findTask(name: string): TaskDef {
  const t = TASKS.find((x) => x.name === name);
  if (!t) throw new Error(`unknown task '${name}' (expected one of: ${TASKS.map((x) => x.name).join(', ')})`);
  return t;
}

export type { TaskDef, TaskResult, TaskTrainOptions } from './task.js';
