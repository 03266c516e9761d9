// bench --kernels (webgpu backend): the pieces a training step is made of, timed on the device, so that a
// short session on a new GPU can pick the gemm tiles and see whether dispatches or FLOPs bound a step.
//   dispatch: a chain of small dependent kernels in one submission -> microseconds per dispatch, host
//             (recording) and device (submit to done);
//   gemm:     each multiply of an LSTM layer of M-lstm and L-lstm (../../shared/bench/WORKLOAD.md), for each
//             tile size alone and for the default choice -> microseconds per call and TFLOP/s.

import { GEMM_TILES, gemmShape, type WebGPUBackend } from '../backend/webgpu.js';
import type { Buf } from '../backend/backend.js';

export interface KernelResult {
  kernel: 'dispatch' | 'gemm';
  shape?: string;
  tiles?: string;
  tile?: number;
  split?: number;
  calls: number;
  host_us: number;
  us: number;
  tflops?: number;
}

/** [name, transA, transB, M, N, K] of one LSTM layer's multiplies (I = H: a layer above the first). */
export function lstmGemmShapes(cfg: string, H: number, B: number, T: number): [string, boolean, boolean, number, number, number][] {
  const G = 4 * H, R = T * B;
  return [
    [`${cfg} x·W_ih^T (all steps)`, false, true, R, G, H],
    [`${cfg} h·W_hh^T (one step)`, false, true, B, G, H],
    [`${cfg} dgates·W_hh (one step)`, false, false, B, H, G],
    [`${cfg} dW += dgates^T·h`, true, false, G, H, R],
    [`${cfg} dx = dgates·W_ih`, false, false, R, H, G],
    [`${cfg} logits = h·W_dec^T`, false, true, R, 256, H],
  ];
}

const now = (): number => performance.now();

async function timeCalls(be: WebGPUBackend, calls: number, record: () => void): Promise<{ host: number; total: number }> {
  await be.finish();
  const t0 = now();
  for (let i = 0; i < calls; i++) record();
  const t1 = now();
  await be.finish();
  const t2 = now();
  return { host: ((t1 - t0) * 1000) / calls, total: ((t2 - t0) * 1000) / calls };
}

function randomBuf(be: WebGPUBackend, n: number, seed: number): Buf {
  const b = be.alloc(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; b[i] = s / 2 ** 32 - 0.5; }
  be.hostWrote(b);
  return b;
}

/** Times the dispatch chain and every multiply; `quick` shrinks the shapes (tests, CPU adapters). */
export async function benchKernels(be: WebGPUBackend, opts: { quick?: boolean; log?: (r: KernelResult) => void } = {}): Promise<KernelResult[]> {
  const out: KernelResult[] = [];
  const put = (r: KernelResult): void => { out.push(r); opts.log?.(r); };
  const defaultTiles = be.gemmTiles;

  // Dispatch cost: y += x over 256 floats, each call depending on the one before.
  const x = randomBuf(be, 256, 1), y = randomBuf(be, 256, 2);
  const chain = opts.quick ? 200 : 3000;
  be.addTo(256, x, 0, y, 0);
  const d = await timeCalls(be, chain, () => be.addTo(256, x, 0, y, 0));
  put({ kernel: 'dispatch', calls: chain, host_us: d.host, us: d.total });
  be.free(x); be.free(y);

  const shapes = opts.quick
    ? lstmGemmShapes('tiny', 32, 8, 4)
    : [...lstmGemmShapes('M-lstm', 512, 64, 128), ...lstmGemmShapes('L-lstm', 1024, 128, 256)];
  const variants: (readonly number[])[] = [defaultTiles, ...GEMM_TILES.map((t) => [t])];
  try {
    for (const [name, tA, tB, M, N, K] of shapes) {
      const A = randomBuf(be, M * K, 3), Bm = randomBuf(be, K * N, 4), C = be.alloc(M * N);
      const flops = 2 * M * N * K;
      // about 0.2 s of work at 20 TFLOP/s per variant, at least 3 and at most 500 calls
      const calls = opts.quick ? 3 : Math.max(3, Math.min(500, Math.round(4e12 / flops)));
      for (const tiles of variants) {
        be.gemmTiles = tiles;
        const call = (): void => be.gemm(tA, tB, M, N, K, A, 0, tA ? M : K, Bm, 0, tB ? K : N, 0, C, 0, N);
        call(); // pipelines compiled outside the timing
        const { T, S } = gemmShape(M, N, K, tiles);
        const r = await timeCalls(be, calls, call);
        put({ kernel: 'gemm', shape: `${name} ${M}x${N}x${K}`, tiles: tiles === defaultTiles ? 'default' : String(tiles[0]),
          tile: T, split: S, calls, host_us: r.host, us: r.total, tflops: flops / (r.total * 1e-6) / 1e12 });
      }
      be.free(A); be.free(Bm); be.free(C);
    }
  } finally {
    be.gemmTiles = defaultTiles;
  }
  return out;
}
