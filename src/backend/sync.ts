// Helpers that make code correct on deferred backends (webgpu) and cost nothing on the immediate ones
// (js, wasm), where every kernel has already run when it returns.

import type { Backend, Buf } from './backend.js';

/** Wait until the host arrays of bufs (default: all buffers) hold the device's values. */
export async function syncHost(be: Backend, bufs?: Buf[]): Promise<void> {
  if (be.syncHost) await be.syncHost(bufs);
}

/** Announce host writes into buf made after the device used it. */
export function hostWrote(be: Backend, buf: Buf): void {
  be.hostWrote?.(buf);
}

/**
 * A loss returned by softmaxCrossEntropy-based code: on deferred backends the value returned is NaN and
 * the sum of the losses since the last read comes from the device; `sum` is what to use on the others.
 */
export async function deferredLoss(be: Backend, sum: number): Promise<number> {
  return be.deferred && be.takeLoss ? be.takeLoss() : sum;
}

/**
 * Refuse a deferred backend where code reads or writes buffers on the host between kernels (the baselines,
 * the task models and their layers): their results would silently be wrong there.
 */
export function immediateOnly(be: Backend, what: string): void {
  if (be.deferred) throw new Error(`${what} runs on the wasm or js backend, not on ${be.name} (it reads buffers on the host between kernels); --backend webgpu trains and samples the recurrent char LM`);
}
