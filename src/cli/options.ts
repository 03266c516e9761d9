// Shared option parsers and backend flags for the CLI commands.

import { availableParallelism } from 'node:os';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Backend } from '../backend/backend.js';
import { createBackend, type BackendName } from '../backend/index.js';

export const int = (min: number) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got '${v}'`);
  return n;
};

export const num = (test: (n: number) => boolean, what: string) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || !test(n)) throw new InvalidArgumentError(`expected ${what}, got '${v}'`);
  return n;
};

export function addBackendOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--backend <name>', 'compute backend: wasm (WebAssembly SIMD, threads), webgpu (GPU, through Dawn in Node) or js (reference)').choices(['wasm', 'webgpu', 'js', 'auto']).default('auto'))
    .option('--threads <n>', 'threads for the wasm backend', int(1), availableParallelism());
}

export async function backendFrom(opts: { backend: BackendName; threads: number }): Promise<Backend> {
  return createBackend({ backend: opts.backend, threads: opts.threads });
}
