// Choosing a backend: 'wasm' (WebAssembly SIMD with worker threads, the default where it loads),
// 'webgpu' (WGSL kernels on a GPU, asked for by name) or 'js' (the TypeScript reference, float32 or float64).

import { availableParallelism } from 'node:os';
import type { Backend } from './backend.js';
import { JsBackend } from './js.js';

export type BackendName = 'js' | 'wasm' | 'webgpu' | 'auto';

export interface BackendOptions {
  backend?: BackendName;
  threads?: number;
}

export async function createBackend(opts: BackendOptions = {}): Promise<Backend> {
  const name = opts.backend ?? 'auto';
  if (name === 'js') return new JsBackend('float32');
  if (name === 'webgpu') {
    const mod = await import('./webgpu.js');
    return mod.createWebGPUBackend();
  }
  if (name !== 'wasm' && name !== 'auto') throw new Error(`unknown backend '${name}' (expected js, wasm or webgpu)`);
  const threads = opts.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`--threads must be a positive integer, got ${threads}`);
  try {
    const mod = await import('./wasm.js' as string);
    return await mod.createWasmBackend({ threads });
  } catch (e) {
    if (name === 'wasm') throw new Error(`the wasm backend could not start: ${(e as Error).message}`);
    return new JsBackend('float32');
  }
}
