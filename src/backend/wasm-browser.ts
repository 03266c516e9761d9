// The WebAssembly backend for browsers (and any engine without Node's file system or worker_threads):
// the same compiled kernels as the Node backend (dist/wasm/rnnkit-simd.wasm / rnnkit-relaxed.wasm),
// instantiated from bytes the caller fetched, single-threaded (the caller's thread, typically a Web Worker).
//
// It reuses WasmBackend's class as it is (allocator, argument checks, kernel calls): constructed with
// threads = 1 it starts no worker thread, so nothing Node-only runs. wasm.ts imports node:fs, node:os,
// node:v8 and node:worker_threads at its top for createWasmBackend; a browser bundle maps those to stubs
// (see web/vite.config.ts), which are never called on this path.
//
// The kernels import a *shared* WebAssembly.Memory (they are built for threads), which browsers only
// allow in a cross-origin-isolated page (COOP: same-origin + COEP: require-corp). Where shared memory,
// SIMD or the module cannot be had, createBrowserBackend falls back to JsBackend('float32') and says why.

import type { Backend } from './backend.js';
import { JsBackend } from './js.js';
import { WA } from './pool-shared.js';
import type { WasmMemory } from './pool-shared.js';
import { WasmBackend } from './wasm.js';

export type Bytes = Uint8Array | ArrayBuffer;

export interface BrowserBackendOptions {
  /** The plain-SIMD build (rnnkit-simd.wasm), or a function that fetches it. */
  simd: Bytes | (() => Promise<Bytes>);
  /** The relaxed-SIMD (FMA) build (rnnkit-relaxed.wasm), used when the engine validates it. */
  relaxed?: Bytes | (() => Promise<Bytes>) | null;
  /** 'auto' (default): relaxed when valid; false: plain SIMD only; true: relaxed or fail over to js. */
  useRelaxed?: boolean | 'auto';
  /** Maximum memory in 64 KiB pages (default 16384 = 1 GiB: browsers may refuse to reserve 4 GiB). */
  maxMemoryPages?: number;
  /** 'wasm' fails instead of falling back to JsBackend. */
  require?: 'wasm';
}

export interface BrowserBackend {
  backend: Backend;
  /** 'wasm-relaxed', 'wasm-simd' or 'js'. */
  kind: string;
  /** Why the wasm backend is not used (null when it is). */
  fallbackReason: string | null;
}

const toU8 = (b: Bytes): Uint8Array => (b instanceof Uint8Array ? b : new Uint8Array(b));
const get = async (b: Bytes | (() => Promise<Bytes>)): Promise<Uint8Array> => toU8(typeof b === 'function' ? await b() : b);

/** Whether this engine runs WebAssembly SIMD128 (a tiny module using v128). */
export function hasWasmSimd(): boolean {
  if (!WA) return false;
  // (module (func (result v128) i32.const 0 i8x16.splat i8x16.popcnt))
  const probe = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);
  try {
    return WA.validate(probe);
  } catch {
    return false;
  }
}

/** A shared memory for the kernels, or the reason none can be made here. */
function sharedMemory(maxPages: number): WasmMemory | string {
  try {
    return new WA.Memory({ initial: 32, maximum: maxPages, shared: true });
  } catch (e) {
    const iso = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated;
    return `shared WebAssembly memory is not available${iso === false ? ' (the page is not cross-origin isolated: serve it with COOP/COEP headers)' : ''}: ${(e as Error).message}`;
  }
}

/**
 * The fastest backend this engine runs: the wasm kernels (relaxed SIMD if valid, else SIMD) on one
 * thread, or JsBackend('float32') with the reason in `fallbackReason`.
 */
export async function createBrowserBackend(opts: BrowserBackendOptions): Promise<BrowserBackend> {
  const fallback = (why: string): BrowserBackend => {
    if (opts.require === 'wasm') throw new Error(`rnnkit: the wasm backend cannot run here: ${why}`);
    return { backend: new JsBackend('float32'), kind: 'js', fallbackReason: why };
  };
  if (!WA) return fallback('this engine has no WebAssembly');
  if (!hasWasmSimd()) return fallback('this engine has no WebAssembly SIMD');
  const maxPages = Math.min(65536, Math.max(256, opts.maxMemoryPages ?? 16384));
  const memory = sharedMemory(maxPages);
  if (typeof memory === 'string') return fallback(memory);
  try {
    let bytes: Uint8Array | null = null;
    let relaxed = false;
    const want = opts.useRelaxed ?? 'auto';
    if (want !== false && opts.relaxed) {
      const rb = await get(opts.relaxed);
      if (WA.validate(rb)) { bytes = rb; relaxed = true; }
    }
    if (!bytes) bytes = await get(opts.simd);
    if (!WA.validate(bytes)) return fallback('the SIMD kernels do not validate in this engine');
    const module = await WA.compile(bytes);
    const backend = new WasmBackend(module, memory, 1, relaxed);
    return { backend, kind: backend.name, fallbackReason: null };
  } catch (e) {
    return fallback((e as Error).message);
  }
}
