// The backends every correctness test runs on: the float32 reference, plus the WebAssembly backend
// (1 and 2 threads) when it can be built here.

import type { Backend } from '../src/backend/backend.js';
import { JsBackend } from '../src/backend/js.js';

export interface NamedBackend { label: string; make: () => Promise<Backend> }

export async function testBackends(): Promise<NamedBackend[]> {
  const list: NamedBackend[] = [{ label: 'js', make: async () => new JsBackend('float32') }];
  let wasm: { createWasmBackend?: (o: { threads?: number }) => Promise<Backend> } | null = null;
  try {
    wasm = await import('../src/backend/wasm.js' as string);
  } catch (e) {
    console.log(`# wasm backend not available: ${(e as Error).message}`);
  }
  if (wasm?.createWasmBackend) {
    const create = wasm.createWasmBackend;
    list.push({ label: 'wasm threads=1', make: () => create({ threads: 1 }) });
    list.push({ label: 'wasm threads=2', make: () => create({ threads: 2 }) });
  }
  return list;
}

/**
 * The WebGPU backend (a GPU, or lavapipe from scripts/setup-lavapipe.sh), or null with the reason printed
 * when no adapter can be had here (then the webgpu tests are skipped, not failed).
 */
export async function webgpuBackend(): Promise<NamedBackend | null> {
  try {
    const { createWebGPUBackend } = await import('../src/backend/webgpu.js');
    const probe = await createWebGPUBackend();
    const label = `webgpu (${probe.adapterInfo})`;
    probe.dispose();
    return { label, make: () => createWebGPUBackend() };
  } catch (e) {
    console.log(`# webgpu backend not available, its tests are skipped: ${(e as Error).message}`);
    return null;
  }
}
