// The WebAssembly SIMD backend: AssemblyScript kernels (assembly/index.ts, built by
// scripts/build-wasm.mjs into dist/wasm/) on one shared WebAssembly.Memory, with a pool of worker
// threads that split the big multiplies.
//
// Buffers are Float32Array views on the shared memory: pointer = byteOffset. The memory is shared,
// so growing it never detaches existing views (each grow yields a new, longer SharedArrayBuffer;
// the views made earlier keep theirs).
//
// Construct with `await createWasmBackend({ threads, relaxed })`.

import { readFileSync } from 'node:fs';
import os from 'node:os';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { Activation, Backend, Buf, PackedB as PackedBBase, Step1Plan, Step1Spec } from './backend.js';
import { checkStep1Spec } from './step1.js';
import {
  ARGS, CTRL_INTS, DONE, ERR, GEN, G_A, G_B, G_BETA, G_C, G_K, G_LDA, G_LDB, G_LDC, G_M, G_MR, G_N, G_NR,
  G_APK, G_BPK, G_TA, G_TB, JOB, JOB_EXIT, JOB_GEMM, JOB_GEMM_SMALL, JOB_PACK_A, JOB_PACK_B, JOB_ROWS, MSLEEP, PARTS, R_H, R_KIND, R_P, R_ROWS,
  MAX_THREADS, NEXT, ROW_GRU_BWD, ROW_SOFTMAX, SOFTMAX_BLOCK, STATS, ROW_GRU_FWD, ROW_LSTM_BWD, ROW_LSTM_FWD, SPLIT, WA, WSLEEP, kernelImports, runChunks,
  JOB_STEP1, S_BHN, S_COUT, S_CPREV, S_HOUT, S_HP, S_HPREV, S_IP, S_KIND, S_N, S_PACK, S_PACK_ROWS, S_ROWS, S_W, S_X, S_XB,
} from './pool-shared.js';
import type { KernelExports, WasmMemory, WasmModule } from './pool-shared.js';

export interface WasmBackendOptions {
  /** Threads for the big multiplies, main thread included. Default: os.availableParallelism(). */
  threads?: number;
  /**
   * Use the relaxed-SIMD (FMA) build: true (required; throws when the engine cannot run it), false (plain
   * SIMD build) or 'auto' (default: relaxed when available). On Node 20 relaxed SIMD sits behind
   * --experimental-wasm-relaxed-simd; unless `enableRelaxedFlag` is false, true/'auto' turn that V8 flag
   * on at run time (v8.setFlagsFromString) when WebAssembly.validate says the build is not accepted.
   */
  relaxed?: boolean | 'auto';
  /** (Unset: the environment variable RNNKIT_WASM_RELAXED=0|1 decides, else 'auto'.) */
  /** Allow turning on V8's relaxed-SIMD flag at run time (default true). */
  enableRelaxedFlag?: boolean;
  /** Maximum memory in 64 KiB pages (default 65536 = 4 GiB, the most wasm32 addresses). */
  maxMemoryPages?: number;
  /** Spin iterations before a waiting thread sleeps in Atomics.wait (default 20000). */
  spin?: number;
  /**
   * Whether the main thread computes chunks of parallel jobs too (default true). false leaves all of
   * them to the workers (used by the tests to make sure the workers' results are checked).
   */
  mainThreadComputes?: boolean;
  /** Directory holding rnnkit-simd.wasm / rnnkit-relaxed.wasm (default: dist/wasm next to this file). */
  wasmDir?: string | URL;
}

const ALIGN = 64;
const PAGE = 65536;
/** Multiplies below this many multiply-adds run on the main thread only. */
const PAR_MIN_MACS = 1 << 16;
/** Row-parallel cell kernels need this many elements (B*H) to be split. */
const PAR_MIN_CELL = 1 << 12;
/** softmaxCrossEntropy over at least this many logits is split over the threads. */
const PAR_MIN_SOFTMAX = 1 << 15;
/** An operand of at least this many elements that several chunks would repack is packed once, shared. */
const SHARE_MIN = 1 << 14;
/** ... and packed by the thread pool from this size on. */
const PAR_PACK_MIN = 1 << 17;
/** gemm with op(A) = A and at most this many rows uses the unpacked small-M kernel. */
const SMALL_M = 3;

function defaultWasmDir(): URL {
  return new URL('../../wasm/', import.meta.url);
}

function loadBytes(dir: string | URL, name: string): Uint8Array {
  const base = typeof dir === 'string' ? (dir.endsWith('/') ? dir : dir + '/') : dir.href.endsWith('/') ? dir : new URL(dir.href + '/');
  const path = typeof base === 'string' ? base + name : new URL(name, base);
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`rnnkit: cannot read the WebAssembly kernels ${String(path)} (run \`npm run build:wasm\`): ${(e as Error).message}`);
  }
}

/** RNNKIT_WASM_RELAXED=0|1 picks the build when the caller does not (undefined: not set). */
function envRelaxed(): boolean | undefined {
  const v = typeof process !== 'undefined' ? process.env?.RNNKIT_WASM_RELAXED : undefined;
  if (v === '0' || v === 'false') return false;
  if (v === '1' || v === 'true') return true;
  return undefined;
}

/** Whether relaxed SIMD can be used, turning on V8's flag if allowed and needed. */
function relaxedAvailable(bytes: Uint8Array, allowFlag: boolean): boolean {
  if (WA.validate(bytes)) return true;
  if (!allowFlag) return false;
  try {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    return false;
  }
  return WA.validate(bytes);
}

/** A shared memory of up to maxPages pages; smaller when the address space is limited (ulimit -v). */
function makeMemory(maxPages: number): WasmMemory {
  for (let max = maxPages; ; max = Math.floor(max / 4)) {
    try {
      return new WA.Memory({ initial: 32, maximum: max, shared: true });
    } catch (e) {
      if (max <= 1024) throw e;
    }
  }
}

/** Create a WasmBackend: compiles the kernels, makes the shared memory, starts the worker threads. */
export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
  const dir = opts.wasmDir ?? defaultWasmDir();
  const want = opts.relaxed ?? envRelaxed() ?? 'auto';
  let bytes: Uint8Array | null = null;
  let relaxed = false;
  if (want !== false) {
    const rb = loadBytes(dir, 'rnnkit-relaxed.wasm');
    if (relaxedAvailable(rb, opts.enableRelaxedFlag ?? true)) {
      bytes = rb;
      relaxed = true;
    } else if (want === true) {
      throw new Error('rnnkit: relaxed SIMD requested but this engine does not accept it (Node 20: --experimental-wasm-relaxed-simd)');
    }
  }
  if (!bytes) bytes = loadBytes(dir, 'rnnkit-simd.wasm');
  const module = await WA.compile(bytes);
  const threads = Math.min(MAX_THREADS, Math.max(1, Math.floor(opts.threads ?? os.availableParallelism())));
  const maxPages = Math.min(65536, Math.max(256, opts.maxMemoryPages ?? 65536));
  const memory = makeMemory(maxPages);
  const backend = new WasmBackend(module, memory, threads, relaxed, opts.spin ?? 20000);
  if (opts.mainThreadComputes === false && threads > 1) backend.mainThreadComputes = false;
  try {
    await backend.startWorkers();
  } catch (e) {
    if (threads === 1) throw e;
    // No worker threads here (a bundler that dropped pool-worker.js, a locked-down runtime): go on
    // single-threaded rather than not at all.
    process.emitWarning(`rnnkit: wasm worker threads could not start (${(e as Error).message}); using 1 thread`);
    const memory1 = makeMemory(maxPages);
    return new WasmBackend(module, memory1, 1, relaxed, opts.spin ?? 20000);
  }
  return backend;
}

interface FreeBlock { ptr: number; size: number }

/** A batch-1 step's layer (or the decoder) split over the threads from this many bytes of weights on. */
const STEP1_PAR_MIN = 1 << 17;
const step1Kind = { lstm: 0, gru: 1, rnn_tanh: 2, rnn_relu: 3 } as const;

/**
 * WasmBackend's batch-1 inference plan: per layer the packed weights (see step1Layer in assembly/index.ts)
 * and the x-side biases, T0 (padded rows of G*Hp), the state twice (ping-pong), all as byte pointers.
 */
interface WasmStep1Plan extends Step1Plan {
  owner: WasmBackend;
  live: boolean;
  kind: number;
  G: number;
  L: number;
  Hp: number;
  /** Quads of a layer, groups of 4 decoder rows, bytes of a packed layer quad (layer 0, layers >= 1). */
  quads: number;
  groups: number;
  qb0: number;
  qb1: number;
  /** Buffers (released by step1Free). */
  bufs: Float32Array[];
  w: number[];
  bx: number[];
  bhn: number[];
  table: number;
  /** What T0 was computed from (embedding, W_ih0, b_ih0, b_hh0): T0 is kept while they are unchanged. */
  t0src: number[];
  t0valid: boolean;
  dec: number;
  decBias: number;
  /** h[s], c[s]: [L, Hp] for s = 0, 1; `cur` is the current state. */
  h: number[];
  c: number[];
  hv: Float32Array[];
  cv: Float32Array[];
  cur: number;
  logits: Float32Array;
  logitsPtr: number;
}

/**
 * A packed snapshot of op(B) [K, N] (a weight matrix) for WasmBackend.gemmPacked: packing once per
 * forward/backward pass instead of once per time step saves 5-10% of a recurrent step's multiply.
 * Later writes to the source buffer do not reach the snapshot: pack again after the weights change.
 */
export interface PackedB extends PackedBBase {
  /** @internal */ readonly ptr: number;
  /** @internal */ readonly owner: WasmBackend;
  /** @internal */ live: boolean;
}

export class WasmBackend implements Backend {
  readonly name: string;
  readonly dtype = 'float32' as const;
  readonly threads: number;
  /** true when the relaxed-SIMD (FMA) build runs. */
  readonly relaxed: boolean;
  /** gemm register tile (rows x columns). */
  readonly tile: { m: number; n: number };

  private readonly memory: WasmMemory;
  private readonly module: WasmModule;
  private readonly ex: KernelExports;
  private sab: SharedArrayBuffer;
  private readonly sabs = new Set<SharedArrayBuffer>();
  private i32: Int32Array;
  // allocator
  private top: number;
  private highWater = 0;
  private readonly freeList: FreeBlock[] = [];
  private readonly sizes = new Map<number, number>();
  // scratch for Int32 arguments
  private scratchPtr = 0;
  private scratchBytes = 0;
  private packPtr = 0;
  private packBytes = 0;
  private lossPtr = 0;
  private lossBytes = 0;
  // threads
  private readonly wsPtrs: number[] = [];
  private readonly ctrl: Int32Array;
  private readonly workers: Worker[] = [];
  private readonly spin: number;
  private disposed = false;
  /** See WasmBackendOptions.mainThreadComputes. */
  mainThreadComputes = true;

  /** Use createWasmBackend(); the constructor makes a backend without worker threads running yet. */
  constructor(module: WasmModule, memory: WasmMemory, threads: number, relaxed: boolean, spin = 20000) {
    this.module = module;
    this.memory = memory;
    this.relaxed = relaxed;
    this.threads = threads;
    this.spin = spin;
    this.name = `wasm-${relaxed ? 'relaxed' : 'simd'}`;
    const inst = new WA.Instance(module, kernelImports(memory));
    this.ex = inst.exports as unknown as KernelExports;
    this.tile = { m: this.ex.tileM(), n: this.ex.tileN() };
    this.sab = memory.buffer as unknown as SharedArrayBuffer;
    this.sabs.add(this.sab);
    this.i32 = new Int32Array(this.sab);
    this.top = Math.ceil((this.ex.heapBase() + 1024) / ALIGN) * ALIGN;
    const wsBytes = this.ex.gemmWorkspaceBytes();
    for (let t = 0; t < threads; t++) this.wsPtrs.push(this.rawAlloc(wsBytes));
    this.ctrl = new Int32Array(new SharedArrayBuffer(CTRL_INTS * 4));
  }

  /** Start the worker threads (threads - 1 of them). */
  async startWorkers(): Promise<void> {
    const url = new URL('./pool-worker.js', import.meta.url);
    const ready: Promise<void>[] = [];
    for (let t = 1; t < this.threads; t++) {
      const w = new Worker(url, {
        workerData: { module: this.module, memory: this.memory, ctrl: this.ctrl.buffer, index: t, ws: this.wsPtrs[t], spin: this.spin },
      });
      this.workers.push(w);
      ready.push(new Promise<void>((resolve, reject) => {
        w.once('message', () => resolve());
        w.once('error', reject);
        w.once('exit', (code) => reject(new Error(`rnnkit: wasm worker exited early (code ${code})`)));
      }));
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      this.dispose();
      throw e;
    }
    for (const w of this.workers) {
      w.removeAllListeners('exit');
      w.removeAllListeners('error');
      w.on('error', () => { /* reported through ERR */ });
      w.unref();
    }
  }

  // ------------------------------------------------------------------ memory

  private grow(needTop: number): void {
    const have = this.sab.byteLength;
    if (needTop <= have) return;
    const pages = Math.ceil((needTop - have) / PAGE);
    const extra = Math.max(pages, Math.ceil(have / PAGE / 4)); // grow by at least 25%
    try {
      this.memory.grow(extra);
    } catch {
      this.memory.grow(pages);
    }
    this.sab = this.memory.buffer as unknown as SharedArrayBuffer;
    this.sabs.add(this.sab);
    this.i32 = new Int32Array(this.sab);
  }

  private rawAlloc(bytes: number): number {
    bytes = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    const fl = this.freeList;
    for (let i = 0; i < fl.length; i++) {
      const b = fl[i];
      if (b.size >= bytes) {
        const ptr = b.ptr;
        if (b.size === bytes) fl.splice(i, 1);
        else { b.ptr += bytes; b.size -= bytes; }
        this.sizes.set(ptr, bytes);
        this.ex.fill(bytes >>> 2, 0, ptr);
        return ptr;
      }
    }
    const ptr = this.top;
    if (ptr + bytes > 4294967296) throw new RangeError('rnnkit: wasm memory exhausted (4 GiB)');
    this.grow(ptr + bytes);
    this.top = ptr + bytes;
    this.sizes.set(ptr, bytes);
    // memory above the high-water mark was never used and is zero; below it, it may hold old data
    if (ptr < this.highWater) this.ex.fill(Math.min(bytes, this.highWater - ptr) >>> 2, 0, ptr);
    if (this.top > this.highWater) this.highWater = this.top;
    return ptr;
  }

  private rawFree(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) return;
    this.sizes.delete(ptr);
    const fl = this.freeList;
    let lo = 0, hi = fl.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (fl[mid].ptr < ptr) lo = mid + 1; else hi = mid; }
    fl.splice(lo, 0, { ptr, size });
    // merge with the next and the previous block
    if (lo + 1 < fl.length && fl[lo].ptr + fl[lo].size === fl[lo + 1].ptr) {
      fl[lo].size += fl[lo + 1].size;
      fl.splice(lo + 1, 1);
    }
    if (lo > 0 && fl[lo - 1].ptr + fl[lo - 1].size === fl[lo].ptr) {
      fl[lo - 1].size += fl[lo].size;
      fl.splice(lo, 1);
      lo--;
    }
    // give the last block back to the bump pointer
    const last = fl[fl.length - 1];
    if (last && last.ptr + last.size === this.top) {
      this.top = last.ptr;
      fl.pop();
    }
  }

  alloc(n: number): Float32Array {
    if (this.disposed) throw new Error('rnnkit: WasmBackend used after dispose()');
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`rnnkit: alloc(${n}): bad size`);
    const ptr = this.rawAlloc(n * 4);
    return new Float32Array(this.sab, ptr, n);
  }

  free(buf: Buf): void {
    if (!(buf instanceof Float32Array) || !this.sabs.has(buf.buffer as SharedArrayBuffer)) return;
    this.rawFree(buf.byteOffset);
  }

  /** Chunks of parallel jobs run so far by each thread (index 0 = main thread), for diagnostics. */
  chunkStats(): number[] {
    return Array.from(this.ctrl.subarray(STATS, STATS + this.threads));
  }

  /** Bytes of wasm memory in use by live buffers (for diagnostics). */
  get bytesAllocated(): number {
    let s = 0;
    for (const v of this.sizes.values()) s += v;
    return s;
  }

  /** Pointer of element `off` of buf, checking that buf is ours and [off, off+extent) lies in it. */
  private p(buf: Buf, off: number, extent: number, what: string): number {
    if (!(buf instanceof Float32Array) || !this.sabs.has(buf.buffer as SharedArrayBuffer)) {
      throw new TypeError(`rnnkit: WasmBackend: ${what} is not a buffer allocated by this backend (use backend.alloc())`);
    }
    if (!(off >= 0 && off + extent <= buf.length)) {
      throw new RangeError(`rnnkit: WasmBackend: ${what}: elements [${off}, ${off + extent}) outside a buffer of ${buf.length}`);
    }
    return buf.byteOffset + off * 4;
  }

  /** Copy n Int32 values into the scratch area; returns its pointer. */
  private ints(a: Int32Array, n: number, what: string): number {
    if (!(a instanceof Int32Array) || a.length < n) throw new RangeError(`rnnkit: WasmBackend: ${what} needs ${n} Int32 values`);
    const bytes = n * 4;
    if (bytes > this.scratchBytes) {
      if (this.scratchPtr) this.rawFree(this.scratchPtr);
      this.scratchBytes = Math.max(bytes, 4096, this.scratchBytes * 2);
      this.scratchPtr = this.rawAlloc(this.scratchBytes);
    }
    this.i32.set(n === a.length ? a : a.subarray(0, n), this.scratchPtr >>> 2);
    return this.scratchPtr;
  }

  // ------------------------------------------------------------------ threads

  /**
   * Run the job set up in ctrl as `chunks` chunks, claimed dynamically by the main thread and the
   * workers; returns when all chunks are done.
   */
  private dispatch(chunks: number): void {
    const ctrl = this.ctrl;
    ctrl[PARTS] = chunks;
    Atomics.store(ctrl, DONE, 0);
    Atomics.store(ctrl, ERR, 0);
    const gen = (ctrl[GEN] + 1) & 0x3fffffff;
    Atomics.store(ctrl, NEXT, (gen & 0x7fff) << 16);
    Atomics.store(ctrl, GEN, gen);
    if (Atomics.load(ctrl, WSLEEP) !== 0) Atomics.notify(ctrl, GEN);
    if (this.mainThreadComputes || this.workers.length === 0) runChunks(this.ex, ctrl, gen, this.wsPtrs[0], 0);
    let d = Atomics.load(ctrl, DONE);
    for (let s = 0; d < chunks && s < this.spin; s++) d = Atomics.load(ctrl, DONE);
    while (d < chunks) {
      Atomics.store(ctrl, MSLEEP, 1);
      Atomics.wait(ctrl, DONE, d, 1000);
      Atomics.store(ctrl, MSLEEP, 0);
      d = Atomics.load(ctrl, DONE);
    }
    // Close the job before the next one's arguments and PARTS are written: a worker still in its
    // claim loop (it loaded NEXT before this store) then fails its compare-exchange or sees no chunk
    // left, instead of claiming a chunk of the next job under this job's generation.
    Atomics.store(ctrl, NEXT, ((gen & 0x7fff) << 16) | 0xffff);
    if (Atomics.load(ctrl, ERR) !== 0) throw new Error('rnnkit: a wasm kernel failed in a worker pool job');
  }

  // ------------------------------------------------------------------ kernels

  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number,
    A: Buf, aOff: number, lda: number, B: Buf, bOff: number, ldb: number,
    beta: 0 | 1, C: Buf, cOff: number, ldc: number): void {
    const hasMK = M > 0 && K > 0, hasKN = K > 0 && N > 0;
    const pa = this.p(A, aOff, hasMK ? (transA ? (K - 1) * lda + M : (M - 1) * lda + K) : 0, 'gemm A');
    const pb = this.p(B, bOff, hasKN ? (transB ? (N - 1) * ldb + K : (K - 1) * ldb + N) : 0, 'gemm B');
    const pc = this.p(C, cOff, M > 0 && N > 0 ? (M - 1) * ldc + N : 0, 'gemm C');
    if (M <= 0 || N <= 0) return;
    const tA = transA ? 1 : 0, tB = transB ? 1 : 0, bt = beta ? 1 : 0;
    const small = !transA && M <= SMALL_M && K > 0;
    this.gemmThreaded(tA, tB, M, N, K, pa, lda, pb, ldb, 0, bt, pc, ldc, small);
  }

  /**
   * A gemm on the thread pool (or on the main thread when too small to split). The split is along
   * the dimension with more register blocks; the operand every chunk would otherwise repack (A for
   * a split along N, B along M) is packed once into shared scratch first, itself in parallel.
   */
  private gemmThreaded(tA: number, tB: number, M: number, N: number, K: number, pa: number, lda: number,
    pb: number, ldb: number, bpk: number, bt: number, pc: number, ldc: number, small: boolean): void {
    const macs = M * N * K;
    const mr = this.tile.m, nr = this.tile.n;
    const nbN = Math.ceil(N / nr), nbM = small ? 0 : Math.ceil(M / mr);
    const splitM = nbM > nbN;
    // Chunks of >= ~1 MFLOP, 1 to 8 per thread, claimed dynamically (smaller chunks: less waiting at
    // the end on a busy machine; they repack nothing since the shared operand is packed once, but each
    // chunk streams the whole shared operand again).
    const target = Math.max(this.threads, Math.min(this.threads * 8, Math.floor((2 * macs) / (1 << 20))));
    const parts = this.workers.length === 0 || macs < PAR_MIN_MACS ? 1 : Math.min(target, splitM ? nbM : nbN);
    if (parts <= 1) {
      if (small) this.ex.gemmSmall(tB, K, pa, lda, pb, ldb, bt, pc, ldc, 0, M, 0, N);
      else this.ex.gemmX(tA, tB, M, N, K, pa, lda, 0, pb, ldb, bpk, bt, pc, ldc, 0, M, 0, N, this.wsPtrs[0]);
      return;
    }
    const c = this.ctrl, a = ARGS;
    c[a + G_TA] = tA; c[a + G_TB] = tB; c[a + G_M] = M; c[a + G_N] = N; c[a + G_K] = K;
    c[a + G_A] = pa; c[a + G_LDA] = lda; c[a + G_B] = pb; c[a + G_LDB] = ldb;
    c[a + G_BETA] = bt; c[a + G_C] = pc; c[a + G_LDC] = ldc; c[a + G_MR] = mr; c[a + G_NR] = small ? 4 : nr;
    c[a + G_APK] = 0; c[a + G_BPK] = bpk;
    if (!small && K > 0) {
      if (splitM && !bpk && K * N >= SHARE_MIN) {
        const dst = this.packScratch(this.ex.packedBytes(K, N));
        c[a + G_BPK] = dst;
        if (K * N >= PAR_PACK_MIN) this.runJob(JOB_PACK_B, 0, Math.min(this.threads, nbN));
        else this.ex.packBPart(tB, K, N, pb, ldb, 0, N, dst);
      } else if (!splitM && M * K >= SHARE_MIN) {
        const dst = this.packScratch(this.ex.packedABytes(M, K));
        c[a + G_APK] = dst;
        if (M * K >= PAR_PACK_MIN) this.runJob(JOB_PACK_A, 1, Math.min(this.threads, Math.ceil(M / mr)));
        else this.ex.packAPart(tA, M, K, pa, lda, 0, M, dst);
      }
    }
    this.runJob(small ? JOB_GEMM_SMALL : JOB_GEMM, splitM ? 1 : 0, parts);
  }

  private runJob(job: number, split: number, parts: number): void {
    this.ctrl[JOB] = job;
    this.ctrl[SPLIT] = split;
    this.dispatch(parts);
  }

  private readonly f64tmp = new Float64Array(1);
  private readonly i32tmp = new Int32Array(this.f64tmp.buffer);

  /** Scratch for per-block losses. */
  private lossScratch(bytes: number): number {
    if (bytes > this.lossBytes) {
      if (this.lossPtr) this.rawFree(this.lossPtr);
      this.lossBytes = Math.max(bytes, 1024, 2 * this.lossBytes);
      this.lossPtr = this.rawAlloc(this.lossBytes);
    }
    return this.lossPtr;
  }

  /** A scratch area of at least `bytes` for operands packed once per multiply (shared by the threads). */
  private packScratch(bytes: number): number {
    if (bytes > this.packBytes) {
      if (this.packPtr) this.rawFree(this.packPtr);
      this.packBytes = Math.max(bytes, Math.min(2 * this.packBytes, 64 << 20));
      this.packPtr = this.rawAlloc(this.packBytes);
    }
    return this.packPtr;
  }

  /** Pack op(B) [K, N] (B stored [K, ldb], or [N, ldb] when transB) once for many gemmPacked calls. */
  packB(transB: boolean, K: number, N: number, B: Buf, bOff: number, ldb: number): PackedB {
    const pb = this.p(B, bOff, K > 0 && N > 0 ? (transB ? (N - 1) * ldb + K : (K - 1) * ldb + N) : 0, 'packB B');
    const bytes = Math.max(64, this.ex.packedBytes(K, N));
    const ptr = this.rawAlloc(bytes);
    if (K > 0 && N > 0) this.ex.packBFull(transB ? 1 : 0, K, N, pb, ldb, ptr);
    return { K, N, ptr, owner: this, live: true };
  }

  /** C = beta*C + op(A) · P, with P from packB (op(B) [K, N]); op(A) [M, K]. */
  gemmPacked(transA: boolean, M: number, A: Buf, aOff: number, lda: number, Pb: PackedBBase,
    beta: 0 | 1, C: Buf, cOff: number, ldc: number): void {
    const P = Pb as PackedB;
    if (P.owner !== this || !P.live) throw new TypeError('rnnkit: gemmPacked: not a live PackedB of this backend');
    const { K, N } = P;
    const pa = this.p(A, aOff, M > 0 && K > 0 ? (transA ? (K - 1) * lda + M : (M - 1) * lda + K) : 0, 'gemmPacked A');
    const pc = this.p(C, cOff, M > 0 && N > 0 ? (M - 1) * ldc + N : 0, 'gemmPacked C');
    if (M <= 0 || N <= 0) return;
    const tA = transA ? 1 : 0, bt = beta ? 1 : 0;
    if (K <= 0) {
      this.ex.gemm(tA, 0, M, N, 0, pa, lda, P.ptr, N, bt, pc, ldc, 0, M, 0, N, this.wsPtrs[0]);
      return;
    }
    this.gemmThreaded(tA, 0, M, N, K, pa, lda, 0, 0, P.ptr, bt, pc, ldc, false);
  }

  /** Release a PackedB. */
  freePacked(Pb: PackedBBase): void {
    const P = Pb as PackedB;
    if (P.owner === this && P.live) {
      P.live = false;
      this.rawFree(P.ptr);
    }
  }

  addRowVector(rows: number, n: number, X: Buf, xOff: number, b: Buf, bOff: number, Y: Buf, yOff: number): void {
    const px = this.p(X, xOff, rows * n, 'addRowVector X');
    const pb = this.p(b, bOff, rows > 0 ? n : 0, 'addRowVector b');
    const py = this.p(Y, yOff, rows * n, 'addRowVector Y');
    if (rows > 0 && n > 0) this.ex.addRowVector(rows, n, px, pb, py);
  }

  sumRows(rows: number, n: number, dY: Buf, dyOff: number, db: Buf, dbOff: number): void {
    const py = this.p(dY, dyOff, rows * n, 'sumRows dY');
    const pb = this.p(db, dbOff, n, 'sumRows db');
    if (rows > 0 && n > 0) this.ex.sumRows(rows, n, py, pb);
  }

  private rowsJob(kind: number, B: number, H: number, ptrs: number[]): boolean {
    if (this.workers.length === 0 || B * H < PAR_MIN_CELL || B < 2) return false;
    const c = this.ctrl, a = ARGS;
    c[JOB] = JOB_ROWS;
    c[a + R_KIND] = kind; c[a + R_ROWS] = B; c[a + R_H] = H;
    for (let i = 0; i < ptrs.length; i++) c[a + R_P + i] = ptrs[i];
    this.dispatch(Math.min(this.threads * 2, B));
    return true;
  }

  lstmCellForward(B: number, H: number, gates: Buf, gOff: number, cPrev: Buf, cpOff: number,
    c: Buf, cOff: number, h: Buf, hOff: number): void {
    const n = B * H;
    const pg = this.p(gates, gOff, 4 * n, 'lstmCellForward gates');
    const pcp = this.p(cPrev, cpOff, n, 'lstmCellForward cPrev');
    const pc = this.p(c, cOff, n, 'lstmCellForward c');
    const ph = this.p(h, hOff, n, 'lstmCellForward h');
    if (n <= 0) return;
    if (!this.rowsJob(ROW_LSTM_FWD, B, H, [pg, pcp, pc, ph])) this.ex.lstmCellForward(B, H, pg, pcp, pc, ph);
  }

  lstmCellBackward(B: number, H: number, gates: Buf, gOff: number, cPrev: Buf, cpOff: number,
    c: Buf, cOff: number, dh: Buf, dhOff: number, dc: Buf, dcOff: number, dgates: Buf, dgOff: number): void {
    const n = B * H;
    const pg = this.p(gates, gOff, 4 * n, 'lstmCellBackward gates');
    const pcp = this.p(cPrev, cpOff, n, 'lstmCellBackward cPrev');
    const pc = this.p(c, cOff, n, 'lstmCellBackward c');
    const pdh = this.p(dh, dhOff, n, 'lstmCellBackward dh');
    const pdc = this.p(dc, dcOff, n, 'lstmCellBackward dc');
    const pdg = this.p(dgates, dgOff, 4 * n, 'lstmCellBackward dgates');
    if (n <= 0) return;
    if (!this.rowsJob(ROW_LSTM_BWD, B, H, [pg, pcp, pc, pdh, pdc, pdg])) {
      this.ex.lstmCellBackward(B, H, pg, pcp, pc, pdh, pdc, pdg);
    }
  }

  lstmOutput(B: number, H: number, gates: Buf, gOff: number, cn: Buf, cnOff: number, h: Buf, hOff: number): void {
    const n = B * H;
    const pg = this.p(gates, gOff, 4 * n, 'lstmOutput gates');
    const pc = this.p(cn, cnOff, n, 'lstmOutput cn');
    const ph = this.p(h, hOff, n, 'lstmOutput h');
    if (n > 0) this.ex.lstmOutput(B, H, pg, pc, ph);
  }

  lstmOutputBackward(B: number, H: number, gates: Buf, gOff: number, cn: Buf, cnOff: number, dh: Buf, dhOff: number,
    dcn: Buf, dcnOff: number, dO: Buf, dOOff: number): void {
    const n = B * H;
    const pg = this.p(gates, gOff, 4 * n, 'lstmOutputBackward gates');
    const pc = this.p(cn, cnOff, n, 'lstmOutputBackward cn');
    const pdh = this.p(dh, dhOff, n, 'lstmOutputBackward dh');
    const pdc = this.p(dcn, dcnOff, n, 'lstmOutputBackward dcn');
    const pdo = this.p(dO, dOOff, n, 'lstmOutputBackward dO');
    if (n > 0) this.ex.lstmOutputBackward(B, H, pg, pc, pdh, pdc, pdo);
  }

  // ---- normalization (double precision, like js.ts) ----

  /** Copy a row mask into the scratch area (0 = no mask). */
  private maskPtr(mask: Uint8Array | null, rows: number): number {
    if (!mask) return 0;
    if (!(mask instanceof Uint8Array) || mask.length < rows) throw new RangeError(`rnnkit: WasmBackend: mask needs ${rows} bytes`);
    if (rows > this.scratchBytes) {
      if (this.scratchPtr) this.rawFree(this.scratchPtr);
      this.scratchBytes = Math.max(rows, 4096, this.scratchBytes * 2);
      this.scratchPtr = this.rawAlloc(this.scratchBytes);
    }
    new Uint8Array(this.sab, this.scratchPtr, rows).set(mask.subarray(0, rows));
    return this.scratchPtr;
  }

  layerNormForward(rows: number, n: number, X: Buf, xOff: number, gamma: Buf, beta: Buf, gbOff: number,
    Y: Buf, yOff: number, xhat: Buf, xhOff: number, rstd: Buf, rOff: number, eps: number): void {
    const m = rows * n;
    const px = this.p(X, xOff, m, 'layerNormForward X');
    const pg = this.p(gamma, gbOff, n, 'layerNormForward gamma'), pb = this.p(beta, gbOff, n, 'layerNormForward beta');
    const py = this.p(Y, yOff, m, 'layerNormForward Y'), ph = this.p(xhat, xhOff, m, 'layerNormForward xhat');
    const pr = this.p(rstd, rOff, rows, 'layerNormForward rstd');
    if (rows > 0 && n > 0) this.ex.layerNormForward(rows, n, px, pg, pb, py, ph, pr, eps);
  }

  layerNormBackward(rows: number, n: number, dY: Buf, dyOff: number, xhat: Buf, xhOff: number, rstd: Buf, rOff: number,
    gamma: Buf, gbOff: number, dGamma: Buf, dBeta: Buf, dX: Buf, dxOff: number): void {
    const m = rows * n;
    const pdy = this.p(dY, dyOff, m, 'layerNormBackward dY'), ph = this.p(xhat, xhOff, m, 'layerNormBackward xhat');
    const pr = this.p(rstd, rOff, rows, 'layerNormBackward rstd'), pg = this.p(gamma, gbOff, n, 'layerNormBackward gamma');
    const pdg = this.p(dGamma, gbOff, n, 'layerNormBackward dGamma'), pdb = this.p(dBeta, gbOff, n, 'layerNormBackward dBeta');
    const pdx = this.p(dX, dxOff, m, 'layerNormBackward dX');
    if (rows > 0 && n > 0) this.ex.layerNormBackward(rows, n, pdy, ph, pr, pg, pdg, pdb, pdx);
  }

  columnStats(rows: number, n: number, X: Buf, xOff: number, mask: Uint8Array | null, mean: Buf, variance: Buf): void {
    const px = this.p(X, xOff, rows * n, 'columnStats X');
    const pm = this.p(mean, 0, n, 'columnStats mean'), pv = this.p(variance, 0, n, 'columnStats variance');
    if (n <= 0) return;
    const pk = this.maskPtr(mask, rows);
    this.ex.columnStats(rows, n, px, pk, pm, pv, this.lossScratch(16 * n));
  }

  normalizeColumns(rows: number, n: number, X: Buf, xOff: number, mean: Buf, variance: Buf, eps: number,
    gamma: Buf, beta: Buf, gbOff: number, Y: Buf, yOff: number, xhat: Buf, xhOff: number, rstd: Buf, rOff: number): void {
    const m = rows * n;
    const px = this.p(X, xOff, m, 'normalizeColumns X');
    const pm = this.p(mean, 0, n, 'normalizeColumns mean'), pv = this.p(variance, 0, n, 'normalizeColumns variance');
    const pg = this.p(gamma, gbOff, n, 'normalizeColumns gamma'), pb = this.p(beta, gbOff, n, 'normalizeColumns beta');
    const py = this.p(Y, yOff, m, 'normalizeColumns Y'), ph = this.p(xhat, xhOff, m, 'normalizeColumns xhat');
    const pr = this.p(rstd, rOff, n, 'normalizeColumns rstd');
    if (n > 0) this.ex.normalizeColumns(rows, n, px, pm, pv, eps, pg, pb, py, ph, pr, this.lossScratch(8 * n));
  }

  batchNormBackward(rows: number, n: number, dY: Buf, dyOff: number, xhat: Buf, xhOff: number, rstd: Buf, rOff: number,
    gamma: Buf, gbOff: number, mask: Uint8Array | null, training: boolean, dGamma: Buf, dBeta: Buf, dX: Buf, dxOff: number): void {
    const m = rows * n;
    const pdy = this.p(dY, dyOff, m, 'batchNormBackward dY'), ph = this.p(xhat, xhOff, m, 'batchNormBackward xhat');
    const pr = this.p(rstd, rOff, n, 'batchNormBackward rstd'), pg = this.p(gamma, gbOff, n, 'batchNormBackward gamma');
    const pdg = this.p(dGamma, gbOff, n, 'batchNormBackward dGamma'), pdb = this.p(dBeta, gbOff, n, 'batchNormBackward dBeta');
    const pdx = this.p(dX, dxOff, m, 'batchNormBackward dX');
    if (n <= 0) return;
    const pk = this.maskPtr(mask, rows);
    this.ex.batchNormBackward(rows, n, pdy, ph, pr, pg, pk, training ? 1 : 0, pdg, pdb, pdx, this.lossScratch(16 * n));
  }

  gruCellForward(B: number, H: number, xp: Buf, xpOff: number, hp: Buf, hpOff: number,
    hPrev: Buf, hpvOff: number, act: Buf, aOff: number, h: Buf, hOff: number): void {
    const n = B * H;
    const px = this.p(xp, xpOff, 3 * n, 'gruCellForward xp');
    const pq = this.p(hp, hpOff, 3 * n, 'gruCellForward hp');
    const pv = this.p(hPrev, hpvOff, n, 'gruCellForward hPrev');
    const pa = this.p(act, aOff, 3 * n, 'gruCellForward act');
    const ph = this.p(h, hOff, n, 'gruCellForward h');
    if (n <= 0) return;
    if (!this.rowsJob(ROW_GRU_FWD, B, H, [px, pq, pv, pa, ph])) this.ex.gruCellForward(B, H, px, pq, pv, pa, ph);
  }

  gruCellBackward(B: number, H: number, act: Buf, aOff: number, hp: Buf, hpOff: number,
    hPrev: Buf, hpvOff: number, dh: Buf, dhOff: number,
    dxp: Buf, dxpOff: number, dhp: Buf, dhpOff: number, dhPrev: Buf, dhPrevOff: number): void {
    const n = B * H;
    const pa = this.p(act, aOff, 3 * n, 'gruCellBackward act');
    const pq = this.p(hp, hpOff, 3 * n, 'gruCellBackward hp');
    const pv = this.p(hPrev, hpvOff, n, 'gruCellBackward hPrev');
    const pdh = this.p(dh, dhOff, n, 'gruCellBackward dh');
    const pdx = this.p(dxp, dxpOff, 3 * n, 'gruCellBackward dxp');
    const pdq = this.p(dhp, dhpOff, 3 * n, 'gruCellBackward dhp');
    const pdv = this.p(dhPrev, dhPrevOff, n, 'gruCellBackward dhPrev');
    if (n <= 0) return;
    if (!this.rowsJob(ROW_GRU_BWD, B, H, [pa, pq, pv, pdh, pdx, pdq, pdv])) {
      this.ex.gruCellBackward(B, H, pa, pq, pv, pdh, pdx, pdq, pdv);
    }
  }

  rnnCellForward(act: Activation, B: number, H: number, a: Buf, aOff: number): void {
    const n = B * H;
    const pa = this.p(a, aOff, n, 'rnnCellForward a');
    if (n > 0) this.ex.rnnCellForward(act === 'tanh' ? 0 : 1, n, pa);
  }

  rnnCellBackward(act: Activation, B: number, H: number, h: Buf, hOff: number, dh: Buf, dhOff: number,
    da: Buf, daOff: number): void {
    const n = B * H;
    const ph = this.p(h, hOff, n, 'rnnCellBackward h');
    const pdh = this.p(dh, dhOff, n, 'rnnCellBackward dh');
    const pda = this.p(da, daOff, n, 'rnnCellBackward da');
    if (n > 0) this.ex.rnnCellBackward(act === 'tanh' ? 0 : 1, n, ph, pdh, pda);
  }

  private checkIds(ids: Int32Array, n: number, rows: number, what: string): void {
    for (let r = 0; r < n; r++) {
      const id = ids[r];
      if (!(id >= 0 && id < rows)) throw new RangeError(`rnnkit: WasmBackend: ${what}: id ${id} at ${r} outside [0, ${rows})`);
    }
  }

  embeddingForward(n: number, dim: number, ids: Int32Array, table: Buf, out: Buf, outOff: number): void {
    const pt = this.p(table, 0, 0, 'embeddingForward table');
    const po = this.p(out, outOff, n * dim, 'embeddingForward out');
    if (n <= 0 || dim <= 0) return;
    this.checkIds(ids, n, Math.floor(table.length / dim), 'embeddingForward');
    const pi = this.ints(ids, n, 'embeddingForward ids');
    this.ex.embeddingForward(n, dim, pi, pt, po);
  }

  embeddingBackward(n: number, dim: number, ids: Int32Array, dOut: Buf, dOutOff: number, dTable: Buf): void {
    const pd = this.p(dOut, dOutOff, n * dim, 'embeddingBackward dOut');
    const pt = this.p(dTable, 0, 0, 'embeddingBackward dTable');
    if (n <= 0 || dim <= 0) return;
    this.checkIds(ids, n, Math.floor(dTable.length / dim), 'embeddingBackward');
    const pi = this.ints(ids, n, 'embeddingBackward ids');
    this.ex.embeddingBackward(n, dim, pi, pd, pt);
  }

  softmaxCrossEntropy(n: number, V: number, logits: Buf, lOff: number, targets: Int32Array,
    dLogits: Buf | null, dOff: number, scale: number): number {
    const pl = this.p(logits, lOff, n * V, 'softmaxCrossEntropy logits');
    const pd = dLogits ? this.p(dLogits, dOff, n * V, 'softmaxCrossEntropy dLogits') : 0;
    if (n <= 0) return 0;
    if (!(targets instanceof Int32Array) || targets.length < n) throw new RangeError(`rnnkit: WasmBackend: softmaxCrossEntropy needs ${n} targets`);
    for (let r = 0; r < n; r++) {
      if (targets[r] >= V) throw new RangeError(`rnnkit: WasmBackend: softmaxCrossEntropy: target ${targets[r]} at ${r} >= V = ${V}`);
    }
    const pt = this.ints(targets, n, 'softmaxCrossEntropy targets');
    // Blocks of SOFTMAX_BLOCK rows, their losses summed in order: the same result on any number of threads.
    const nb = Math.ceil(n / SOFTMAX_BLOCK);
    const lossPtr = this.lossScratch(nb * 8);
    if (this.workers.length > 0 && n * V >= PAR_MIN_SOFTMAX && nb >= 2) {
      const c = this.ctrl, a = ARGS;
      c[JOB] = JOB_ROWS;
      c[a + R_KIND] = ROW_SOFTMAX; c[a + R_ROWS] = nb; c[a + R_H] = V;
      c[a + R_P] = n; c[a + R_P + 1] = pl; c[a + R_P + 2] = pt; c[a + R_P + 3] = pd; c[a + R_P + 5] = lossPtr;
      this.f64tmp[0] = scale;
      c[a + R_P + 6] = this.i32tmp[0]; c[a + R_P + 7] = this.i32tmp[1];
      this.dispatch(Math.min(nb, this.threads * 2));
    } else {
      this.ex.softmaxBlocks(n, V, pl, pt, pd, scale, SOFTMAX_BLOCK, 0, nb, lossPtr);
    }
    const lv = new Float64Array(this.sab, lossPtr, nb);
    let loss = 0;
    for (let b = 0; b < nb; b++) loss += lv[b];
    return loss;
  }

  mul(n: number, a: Buf, aOff: number, b: Buf, bOff: number, y: Buf, yOff: number): void {
    const pa = this.p(a, aOff, n, 'mul a'), pb = this.p(b, bOff, n, 'mul b'), py = this.p(y, yOff, n, 'mul y');
    if (n > 0) this.ex.mul(n, pa, pb, py);
  }
  addTo(n: number, x: Buf, xOff: number, y: Buf, yOff: number): void {
    const px = this.p(x, xOff, n, 'addTo x'), py = this.p(y, yOff, n, 'addTo y');
    if (n > 0) this.ex.addTo(n, px, py);
  }
  scale(n: number, s: number, x: Buf, xOff: number): void {
    const px = this.p(x, xOff, n, 'scale x');
    if (n > 0) this.ex.scale(n, s, px);
  }
  sumSquares(n: number, x: Buf, xOff: number): number {
    const px = this.p(x, xOff, n, 'sumSquares x');
    return n > 0 ? this.ex.sumSquares(n, px) : 0;
  }
  fill(n: number, v: number, x: Buf, xOff: number): void {
    const px = this.p(x, xOff, n, 'fill x');
    if (n > 0) this.ex.fill(n, v, px);
  }
  copy(n: number, x: Buf, xOff: number, y: Buf, yOff: number): void {
    const px = this.p(x, xOff, n, 'copy x'), py = this.p(y, yOff, n, 'copy y');
    if (n > 0) this.ex.copy(n, px, py);
  }
  copy2d(rows: number, n: number, X: Buf, xOff: number, ldx: number, Y: Buf, yOff: number, ldy: number): void {
    const ext = (ld: number) => (rows > 0 && n > 0 ? (rows - 1) * ld + n : 0);
    const px = this.p(X, xOff, ext(ldx), 'copy2d X'), py = this.p(Y, yOff, ext(ldy), 'copy2d Y');
    if (rows > 0 && n > 0) this.ex.copy2d(rows, n, px, ldx, py, ldy);
  }

  adam(n: number, p: Buf, g: Buf, m: Buf, v: Buf, lr: number, b1: number, b2: number, eps: number,
    weightDecay: number, step: number): void {
    const pp = this.p(p, 0, n, 'adam p'), pg = this.p(g, 0, n, 'adam g');
    const pm = this.p(m, 0, n, 'adam m'), pv = this.p(v, 0, n, 'adam v');
    if (n <= 0) return;
    const bc1 = 1 - Math.pow(b1, step), bc2 = 1 - Math.pow(b2, step);
    this.ex.adam(n, pp, pg, pm, pv, b1, b2, eps, weightDecay, lr / bc1, Math.sqrt(bc2));
  }

  sgd(n: number, p: Buf, g: Buf, mom: Buf | null, lr: number, momentum: number, weightDecay: number): void {
    const pp = this.p(p, 0, n, 'sgd p'), pg = this.p(g, 0, n, 'sgd g');
    const pm = mom && momentum > 0 ? this.p(mom, 0, n, 'sgd mom') : 0;
    if (n > 0) this.ex.sgd(n, pp, pg, pm, lr, momentum, weightDecay);
  }

  // ---- batch-1 inference (see Backend.step1Create and step1Layer in assembly/index.ts) ----

  step1Create(spec: Step1Spec): Step1Plan {
    const { G, L } = checkStep1Spec(spec);
    const { V, E, H, cell } = spec, kind = step1Kind[cell];
    const Hp = (H + 3) & ~3, Vp = (V + 3) & ~3, GHp = G * Hp;
    const bufs: Float32Array[] = [];
    const a = (n: number): Float32Array => { const b = this.alloc(n); bufs.push(b); return b; };
    const ptr = (n: number): number => a(n).byteOffset;
    const qb0 = this.ex.step1QuadBytes(kind, 0, Hp), qb1 = this.ex.step1QuadBytes(kind, Hp, Hp);
    const quads = Hp / 4;
    const w: number[] = [], bx: number[] = [], bhn: number[] = [];
    for (let k = 0; k < L; k++) {
      w.push(ptr(((k === 0 ? qb0 : qb1) * quads) / 4));
      bx.push(ptr(GHp));
      bhn.push(ptr(cell === 'gru' ? Hp : 0));
    }
    const hv = [a(L * Hp), a(L * Hp)], cv = [a(cell === 'lstm' ? L * Hp : 0), a(cell === 'lstm' ? L * Hp : 0)];
    const logits = a(Vp);
    const plan: WasmStep1Plan = {
      spec, owner: this, live: true, kind, G, L, Hp, quads, groups: Vp / 4, qb0, qb1, bufs, w, bx, bhn,
      table: ptr(V * GHp), t0src: [ptr(V * E), ptr(G * H * E), ptr(G * H), ptr(G * H)], t0valid: false, dec: ptr(Vp * Hp), decBias: ptr(Vp), h: hv.map((b) => b.byteOffset), c: cv.map((b) => b.byteOffset),
      hv, cv, cur: 0, logits: logits.subarray(0, V), logitsPtr: logits.byteOffset,
    };
    this.step1Load(plan);
    return plan;
  }

  private step1Plan(p: Step1Plan): WasmStep1Plan {
    const plan = p as WasmStep1Plan;
    if (plan.owner !== this || !plan.live) throw new TypeError('rnnkit: step1: not a live plan of this backend');
    return plan;
  }

  step1Load(p: Step1Plan): void {
    const plan = this.step1Plan(p), { spec, G, L, Hp, kind, quads } = plan, { V, E, H } = spec, gru = spec.cell === 'gru';
    checkStep1Spec(spec);
    const f32 = new Float32Array(this.sab);
    for (let k = 0; k < L; k++) {
      const l = spec.layers[k];
      const pih = this.p(l.wih, 0, l.wih.length, 'step1 weight_ih'), phh = this.p(l.whh, 0, l.whh.length, 'step1 weight_hh');
      const I = k === 0 ? 0 : H, c = this.ctrl, A = ARGS;
      c[A + S_KIND] = S_PACK; c[A + S_IP] = kind; c[A + S_HP] = H; c[A + S_X] = I; c[A + S_W] = pih; c[A + S_HPREV] = phh; c[A + S_HOUT] = plan.w[k];
      if (!this.step1Job(quads, quads * (k === 0 ? plan.qb0 : plan.qb1))) this.ex.step1Pack(kind, H, I, pih, phh, plan.w[k], 0, quads);
      // x-side biases, gate g at g*Hp: b_ih + b_hh (GRU's n gate: b_ih only, b_hh's n part is b_hn)
      const bx = plan.bx[k] >>> 2;
      for (let g = 0; g < G; g++) {
        for (let j = 0; j < H; j++) {
          const r = g * H + j;
          f32[bx + g * Hp + j] = gru && g === 2 ? l.bih[r] : l.bih[r] + l.bhh[r];
        }
      }
      if (gru) for (let j = 0; j < H; j++) f32[(plan.bhn[k] >>> 2) + j] = l.bhh[2 * H + j];
    }
    // T0 = embedding · W_ih0^T (gate g into columns g*Hp.. of rows of G*Hp) + the x-side biases of layer 0,
    // computed again only when what it is made of changed (comparing those is 1% of the multiply)
    const l0 = spec.layers[0];
    const src = [this.p(spec.embedding, 0, V * E, 'step1 embedding'), this.p(l0.wih, 0, G * H * E, 'step1 weight_ih_l0'),
      this.p(l0.bih, 0, G * H, 'step1 bias_ih_l0'), this.p(l0.bhh, 0, G * H, 'step1 bias_hh_l0')];
    const sizes = [V * E, G * H * E, G * H, G * H];
    if (!plan.t0valid || !src.every((q, i) => this.ex.sameBits(sizes[i], q, plan.t0src[i]) === 1)) {
      src.forEach((q, i) => this.ex.copy(sizes[i], q, plan.t0src[i]));
      for (let g = 0; g < G; g++) {
        this.gemmThreaded(0, 1, V, H, E, src[0], E, src[1] + g * H * E * 4, E, 0, 0, plan.table + g * Hp * 4, G * Hp, false);
      }
      this.ex.addRowVector(V, G * Hp, plan.table, plan.bx[0], plan.table);
      plan.t0valid = true;
    }
    const pd = this.p(spec.decoder, 0, V * H, 'step1 decoder.weight'), c = this.ctrl, A = ARGS;
    c[A + S_KIND] = S_PACK_ROWS; c[A + S_IP] = V; c[A + S_HP] = H; c[A + S_W] = pd; c[A + S_HOUT] = plan.dec;
    if (!this.step1Job(plan.groups, plan.groups * Hp * 16)) this.ex.step1PackRows(V, H, pd, plan.dec, 0, plan.groups);
    if (spec.decoderBias) f32.set(spec.decoderBias, plan.decBias >>> 2);
  }

  /** Run quads (or decoder row groups) 0..n of a step on the pool, or here when small. */
  private step1Job(n: number, bytes: number): boolean {
    if (this.workers.length === 0 || bytes < STEP1_PAR_MIN) return false;
    this.ctrl[ARGS + S_N] = n;
    this.ctrl[JOB] = JOB_STEP1;
    this.dispatch(Math.min(n, this.threads));
    return true;
  }

  step1Run(p: Step1Plan, id: number): Float32Array {
    const plan = p as WasmStep1Plan;
    if (plan.owner !== this || !plan.live) this.step1Plan(p);
    if (!(id >= 0 && id < plan.spec.V) || id !== (id | 0)) throw new RangeError(`rnnkit: step1: token ${id} outside [0, ${plan.spec.V})`);
    const { kind, Hp, L, quads } = plan, c = this.ctrl, A = ARGS;
    const src = plan.cur, dst = 1 - src, Hb = Hp * 4;
    for (let k = 0; k < L; k++) {
      const Ip = k === 0 ? 0 : Hp;
      const x = k === 0 ? 0 : plan.h[dst] + (k - 1) * Hb;
      const xb = k === 0 ? plan.table + id * plan.G * Hb : plan.bx[k];
      const hp = plan.h[src] + k * Hb, ho = plan.h[dst] + k * Hb;
      const cp = plan.c[src] + k * Hb, co = plan.c[dst] + k * Hb;
      const qb = k === 0 ? plan.qb0 : plan.qb1;
      c[A + S_KIND] = kind; c[A + S_IP] = Ip; c[A + S_HP] = Hp; c[A + S_W] = plan.w[k]; c[A + S_X] = x;
      c[A + S_HPREV] = hp; c[A + S_CPREV] = cp; c[A + S_HOUT] = ho; c[A + S_COUT] = co; c[A + S_XB] = xb; c[A + S_BHN] = plan.bhn[k];
      if (!this.step1Job(quads, quads * qb)) this.ex.step1Layer(kind, Ip, Hp, plan.w[k], x, hp, cp, ho, co, xb, plan.bhn[k], 0, quads);
    }
    const top = plan.h[dst] + (L - 1) * Hb;
    c[A + S_KIND] = S_ROWS; c[A + S_HP] = Hp; c[A + S_W] = plan.dec; c[A + S_X] = top; c[A + S_XB] = plan.decBias; c[A + S_HOUT] = plan.logitsPtr;
    if (!this.step1Job(plan.groups, plan.groups * Hp * 16)) this.ex.step1Rows(Hp, plan.dec, top, plan.decBias, plan.logitsPtr, 0, plan.groups);
    plan.cur = dst;
    return plan.logits;
  }

  step1State(p: Step1Plan, h: Buf | null, c: Buf | null, out: boolean): void {
    const plan = this.step1Plan(p), { L, Hp } = plan, H = plan.spec.H, n = L * H;
    const lstm = plan.spec.cell === 'lstm';
    const pairs: [Float32Array, Buf | null][] = [[plan.hv[plan.cur], h]];
    if (lstm) pairs.push([plan.cv[plan.cur], c]);
    for (const [mine, theirs] of pairs) {
      if (theirs && theirs.length !== n) throw new Error(`rnnkit: step1State: state has ${theirs.length} values, expected ${n}`);
      for (let k = 0; k < L; k++) {
        for (let j = 0; j < Hp; j++) {
          if (out) { if (theirs && j < H) theirs[k * H + j] = mine[k * Hp + j]; } else mine[k * Hp + j] = theirs && j < H ? theirs[k * H + j] : 0;
        }
      }
    }
  }

  step1Free(p: Step1Plan): void {
    const plan = p as WasmStep1Plan;
    if (plan.owner !== this || !plan.live) return;
    plan.live = false;
    for (const b of plan.bufs) this.free(b);
  }

  /** Stop the worker threads. Buffers stay readable (their memory lives as long as the views). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.workers.length) {
      this.ctrl[JOB] = JOB_EXIT;
      Atomics.add(this.ctrl, GEN, 1);
      Atomics.notify(this.ctrl, GEN);
      for (const w of this.workers) void w.terminate().catch(() => {});
      this.workers.length = 0;
    }
  }
}
