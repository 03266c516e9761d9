// The five task shapes of `rnnkit task`.

import { manyToOne } from './langid.js';
import type { TaskDef } from './task.js';

export const TASKS: TaskDef[] = [manyToOne];

export function findTask(name: string): TaskDef {
  const t = TASKS.find((x) => x.name === name);
  if (!t) throw new Error(`unknown task '${name}' (expected one of: ${TASKS.map((x) => x.name).join(', ')})`);
  return t;
}

export type { TaskDef, TaskResult, TaskTrainOptions } from './task.js';
