// Micro benchmark of the WasmBackend gemm on the recurrent step shapes (and a few others).
// Usage: node bench/gemm.mjs [--threads 1,2] [--builds simd,relaxed] [--shapes step|all] [--ms 600] [--packed] [--json]
// Prints GFLOP/s by wall clock and by process CPU time (the second is what engine-notes.md reports
// for one thread; on a shared machine the first is lower when other processes hold the cores).
import { createWasmBackend } from '../dist/src/backend/wasm.js';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf('--' + name); return i >= 0 ? args[i + 1] : def; };
const threadsList = opt('threads', '1,2').split(',').map(Number);
const builds = opt('builds', 'simd,relaxed').split(',');
const ms = Number(opt('ms', '600'));
const json = args.includes('--json');
// --packed: also time gemmPacked (weights packed once, as a layer would do per pass)
const packedModes = args.includes('--packed') ? [false, true] : [false];

// [label, transA, transB, M, N, K]
const stepShapes = [
  ['M-lstm step h·W_hh^T (NT)', false, true, 64, 2048, 512],
  ['S-lstm step h·W_hh^T (NT)', false, true, 32, 512, 128],
  ['M-lstm step NN 64x2048x512', false, false, 64, 2048, 512],
];
const moreShapes = [
  ['M-lstm bwd dh = dg·W (NN)', false, false, 64, 512, 2048],
  ['M-lstm dW += dg^T·h (TN)', true, false, 2048, 512, 64],
  ['head logits (NT)', false, true, 8192, 256, 512],
  ['8192x256x512 NN', false, false, 8192, 256, 512],
  ['sample b=1 (NT)', false, true, 1, 2048, 512],
];
const shapes = opt('shapes', 'step') === 'all' ? [...stepShapes, ...moreShapes] : stepShapes;

function rand(buf) { for (let i = 0; i < buf.length; i++) buf[i] = Math.random() - 0.5; }

for (const build of builds) {
  for (const threads of threadsList) {
    let be;
    try {
      be = await createWasmBackend({ threads, relaxed: build === 'relaxed' });
    } catch (e) {
      console.log(`${build} threads=${threads}: unavailable (${e.message})`);
      continue;
    }
    for (const [label0, ta, tb, M, N, K] of shapes) for (const packed of packedModes) {
      const label = packed ? label0 + ' packed' : label0;
      const A = be.alloc(M * K), B = be.alloc(K * N), C = be.alloc(M * N);
      rand(A); rand(B);
      const lda = ta ? M : K, ldb = tb ? K : N;
      let P = null;
      const run = packed
        ? () => be.gemmPacked(ta, M, A, 0, lda, P, 1, C, 0, N)
        : () => be.gemm(ta, tb, M, N, K, A, 0, lda, B, 0, ldb, 1, C, 0, N);
      if (packed) P = be.packB(tb, K, N, B, 0, ldb);
      // warm-up: let TurboFan tier up
      const w0 = performance.now();
      while (performance.now() - w0 < 400) run();
      let it = 0;
      const c0 = process.cpuUsage(), t0 = performance.now();
      while (performance.now() - t0 < ms) { run(); it++; }
      const wall = (performance.now() - t0) / 1e3;
      const cu = process.cpuUsage(c0);
      const cpu = (cu.user + cu.system) / 1e6;
      const flop = 2 * M * N * K * it;
      const r = {
        build: be.name, threads, shape: label, M, N, K,
        gflops_wall: +(flop / wall / 1e9).toFixed(1),
        gflops_per_cpu_s: +(flop / cpu / 1e9).toFixed(1),
        us_per_call: +((wall / it) * 1e6).toFixed(1),
      };
      if (json) console.log(JSON.stringify(r));
      else console.log(`${r.build.padEnd(13)} t=${threads} ${label.padEnd(37)} ${String(r.gflops_wall).padStart(6)} GFLOP/s wall  ${String(r.gflops_per_cpu_s).padStart(6)} per CPU-s  ${r.us_per_call} us/call`);
      if (P) be.freePacked(P);
      be.free(A); be.free(B); be.free(C);
    }
    be.dispose();
  }
}
