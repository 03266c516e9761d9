// A WasmBackend worker thread: instantiates the kernel module on the shared memory and runs its part
// of each job. Waiting is spin-then-Atomics.wait on the job generation counter, so a dispatch costs
// microseconds while jobs come back to back (the recurrent time loop) and no CPU while idle.

import { parentPort, workerData } from 'node:worker_threads';
import { WA, GEN, JOB, JOB_EXIT, WSLEEP, kernelImports, runChunks } from './pool-shared.js';
import type { KernelExports, WasmMemory, WasmModule } from './pool-shared.js';

interface WorkerInit {
  module: WasmModule;
  memory: WasmMemory;
  ctrl: SharedArrayBuffer;
  index: number;
  ws: number;
  spin: number;
}

const init = workerData as WorkerInit;
const instance = new WA.Instance(init.module, kernelImports(init.memory));
const ex = instance.exports as unknown as KernelExports;
const ctrl = new Int32Array(init.ctrl);
const spin = init.spin;

let gen = Atomics.load(ctrl, GEN);
parentPort!.postMessage({ ready: true });

// The spin adapts: it halves each time it ends without a job (jobs are sparse: spinning only burns a
// core that other processes could use) and doubles back each time a job arrives while spinning.
const minSpin = Math.max(1, spin >> 5);
let spinLimit = spin;
for (;;) {
  let g = Atomics.load(ctrl, GEN);
  if (g === gen) {
    for (let s = 0; s < spinLimit; s++) {
      g = Atomics.load(ctrl, GEN);
      if (g !== gen) break;
    }
    spinLimit = g !== gen ? Math.min(spin, spinLimit * 2) : Math.max(minSpin, spinLimit >> 1);
    while (g === gen) {
      Atomics.add(ctrl, WSLEEP, 1);
      Atomics.wait(ctrl, GEN, gen);
      Atomics.sub(ctrl, WSLEEP, 1);
      g = Atomics.load(ctrl, GEN);
    }
  }
  gen = g;
  if (ctrl[JOB] === JOB_EXIT) break;
  runChunks(ex, ctrl, gen, init.ws, init.index);
}
parentPort!.close();
