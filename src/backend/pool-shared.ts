// Layout of the control block shared by the WasmBackend's main thread and its worker threads, and the
// work split both sides compute identically. See wasm.ts (dispatch) and pool-worker.ts (the loop).

/** Int32 slots of the control SharedArrayBuffer. */
export const GEN = 0; // job generation: bumped by the main thread to start a job
export const DONE = 1; // number of chunks of the current job finished
export const WSLEEP = 2; // number of workers blocked in Atomics.wait on GEN
export const MSLEEP = 3; // 1 while the main thread is blocked in Atomics.wait on DONE
export const ERR = 4; // set to 1 by a thread whose kernel threw
export const JOB = 5; // job kind (JOB_*)
export const PARTS = 6; // number of chunks the job is split into
export const SPLIT = 7; // 0: split along N, 1: split along M
export const NEXT = 63; // next chunk to claim: (generation & 0x7fff) << 16 | chunk index (0xffff: job closed)
export const ARGS = 8; // job arguments from here on
export const STATS = 64; // STATS + t: chunks run by thread t (diagnostics), t < MAX_THREADS
export const MAX_THREADS = 64;
export const CTRL_INTS = STATS + MAX_THREADS;

export const JOB_EXIT = -1;
export const JOB_GEMM = 1; // packed gemm
export const JOB_GEMM_SMALL = 2; // small-M gemm without packing
export const JOB_ROWS = 3; // a row-parallel elementwise kernel (see ROW_* kinds)
export const JOB_PACK_A = 4; // pack rows of op(A) into G_APK (split along M)
export const JOB_PACK_B = 5; // pack columns of op(B) into G_BPK (split along N)
export const JOB_STEP1 = 6; // a batch-1 inference step: quads of a packed layer, or groups of decoder rows (S_* args)

// Argument slots of a gemm job (relative to ARGS).
export const G_TA = 0, G_TB = 1, G_M = 2, G_N = 3, G_K = 4, G_A = 5, G_LDA = 6, G_B = 7, G_LDB = 8,
  G_BETA = 9, G_C = 10, G_LDC = 11, G_MR = 12, G_NR = 13, G_APK = 14, G_BPK = 15;

/** [start, end) of part `idx` of `total` items in blocks of `block`, split into `parts` nearly equal parts. */
export function partRange(total: number, block: number, parts: number, idx: number): [number, number] {
  const nb = Math.ceil(total / block);
  const b0 = Math.floor((nb * idx) / parts), b1 = Math.floor((nb * (idx + 1)) / parts);
  return [Math.min(total, b0 * block), Math.min(total, b1 * block)];
}

/** The kernels a worker can run; both the main thread and the workers use this. */
export interface KernelExports {
  tileM(): number;
  tileN(): number;
  isRelaxed(): number;
  heapBase(): number;
  gemmWorkspaceBytes(): number;
  gemm(tA: number, tB: number, M: number, N: number, K: number, A: number, lda: number, B: number, ldb: number,
    beta: number, C: number, ldc: number, m0: number, m1: number, n0: number, n1: number, ws: number): void;
  gemmSmall(tB: number, K: number, A: number, lda: number, B: number, ldb: number,
    beta: number, C: number, ldc: number, m0: number, m1: number, n0: number, n1: number): void;
  vecExp(n: number, x: number, y: number): void;
  vecTanh(n: number, x: number, y: number): void;
  vecSigmoid(n: number, x: number, y: number): void;
  lstmCellForward(B: number, H: number, gates: number, cPrev: number, c: number, h: number): void;
  lstmCellBackward(B: number, H: number, gates: number, cPrev: number, c: number, dh: number, dc: number, dgates: number): void;
  lstmOutput(B: number, H: number, gates: number, cn: number, h: number): void;
  layerNormForward(rows: number, n: number, X: number, gamma: number, beta: number, Y: number, xhat: number,
    rstd: number, eps: number): void;
  layerNormBackward(rows: number, n: number, dY: number, xhat: number, rstd: number, gamma: number,
    dGamma: number, dBeta: number, dX: number): void;
  columnStats(rows: number, n: number, X: number, mask: number, mean: number, variance: number, tmp: number): void;
  normalizeColumns(rows: number, n: number, X: number, mean: number, variance: number, eps: number,
    gamma: number, beta: number, Y: number, xhat: number, rstd: number, tmp: number): void;
  batchNormBackward(rows: number, n: number, dY: number, xhat: number, rstd: number, gamma: number,
    mask: number, training: number, dGamma: number, dBeta: number, dX: number, tmp: number): void;
  lstmOutputBackward(B: number, H: number, gates: number, cn: number, dh: number, dcn: number, dO: number): void;
  gruCellForward(B: number, H: number, xp: number, hp: number, hPrev: number, act: number, h: number): void;
  gruCellBackward(B: number, H: number, act: number, hp: number, hPrev: number, dh: number,
    dxp: number, dhp: number, dhPrev: number): void;
  rnnCellForward(act: number, n: number, a: number): void;
  rnnCellBackward(act: number, n: number, h: number, dh: number, da: number): void;
  addRowVector(rows: number, n: number, X: number, b: number, Y: number): void;
  sumRows(rows: number, n: number, dY: number, db: number): void;
  embeddingForward(n: number, dim: number, ids: number, table: number, out: number): void;
  embeddingBackward(n: number, dim: number, ids: number, dOut: number, dTable: number): void;
  softmaxCrossEntropy(n: number, V: number, logits: number, targets: number, d: number, scale: number): number;
  softmaxBlocks(n: number, V: number, logits: number, targets: number, d: number, scale: number,
    blockRows: number, b0: number, b1: number, lossOut: number): void;
  mul(n: number, a: number, b: number, y: number): void;
  addTo(n: number, x: number, y: number): void;
  scale(n: number, s: number, x: number): void;
  sumSquares(n: number, x: number): number;
  fill(n: number, v: number, x: number): void;
  copy(n: number, x: number, y: number): void;
  copy2d(rows: number, n: number, X: number, ldx: number, Y: number, ldy: number): void;
  packedBytes(K: number, N: number): number;
  packBFull(tB: number, K: number, N: number, B: number, ldb: number, dst: number): void;
  gemmPacked(tA: number, M: number, N: number, K: number, A: number, lda: number, Bpk: number,
    beta: number, C: number, ldc: number, m0: number, m1: number, n0: number, n1: number, ws: number): void;
  gemmX(tA: number, tB: number, M: number, N: number, K: number, A: number, lda: number, Apk: number,
    B: number, ldb: number, Bpk: number, beta: number, C: number, ldc: number,
    m0: number, m1: number, n0: number, n1: number, ws: number): void;
  packedABytes(M: number, K: number): number;
  packAPart(tA: number, M: number, K: number, A: number, lda: number, i0: number, i1: number, dst: number): void;
  packBPart(tB: number, K: number, N: number, B: number, ldb: number, j0: number, j1: number, dst: number): void;
  adam(n: number, p: number, g: number, m: number, v: number, b1: number, b2: number, eps: number,
    wd: number, stepSize: number, sqrtBc2: number): void;
  sgd(n: number, p: number, g: number, mom: number, lr: number, momentum: number, wd: number): void;
  step1QuadBytes(kind: number, Ip: number, Hp: number): number;
  step1Pack(kind: number, H: number, I: number, wih: number, whh: number, dst: number, q0: number, q1: number): void;
  step1PackRows(V: number, H: number, W: number, dst: number, g0: number, g1: number): void;
  step1Layer(kind: number, Ip: number, Hp: number, Wp: number, x: number, hPrev: number, cPrev: number,
    hOut: number, cOut: number, xb: number, bhn: number, q0: number, q1: number): void;
  step1Rows(Hp: number, Wp: number, h: number, bias: number, out: number, g0: number, g1: number): void;
  sameBits(n: number, a: number, b: number): number;
}

// Minimal WebAssembly typings (the project compiles with lib ES2022 and no DOM, which has none).
export interface WasmMemory { readonly buffer: ArrayBufferLike; grow(pages: number): number }
export type WasmModule = object;
export interface WasmInstance { readonly exports: Record<string, unknown> }
export interface WasmApi {
  Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  Instance: new (m: WasmModule, imports: object) => WasmInstance;
  compile(bytes: Uint8Array): Promise<WasmModule>;
  validate(bytes: Uint8Array): boolean;
}
export const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Imports of the kernel module. */
export function kernelImports(memory: WasmMemory): object {
  return {
    env: {
      memory,
      abort: (_msg: number, _file: number, line: number, col: number) => {
        throw new Error(`rnnkit wasm: abort at ${line}:${col}`);
      },
    },
  };
}

/**
 * Claim and run chunks of job generation `gen` until none is left (main thread and workers alike).
 * Chunks are claimed dynamically, so a thread that is descheduled (a busy machine) delays nothing:
 * the others take its share. The claim word carries the generation, so a late thread never runs a
 * chunk of a job it did not read the arguments of.
 */
export function runChunks(ex: KernelExports, ctrl: Int32Array, gen: number, ws: number, thread: number): void {
  const tag = gen & 0x7fff;
  for (;;) {
    const v = Atomics.load(ctrl, NEXT);
    if (v >>> 16 !== tag) return;
    const idx = v & 0xffff;
    if (idx >= ctrl[PARTS]) return;
    if (Atomics.compareExchange(ctrl, NEXT, v, v + 1) !== v) continue;
    try {
      runPart(ex, ctrl, idx, ws);
    } catch {
      Atomics.store(ctrl, ERR, 1);
    }
    ctrl[STATS + thread]++;
    Atomics.add(ctrl, DONE, 1);
    if (Atomics.load(ctrl, MSLEEP) !== 0) Atomics.notify(ctrl, DONE);
  }
}

/** Run chunk `idx` of the job described in ctrl. */
function runPart(ex: KernelExports, ctrl: Int32Array, idx: number, ws: number): void {
  const job = ctrl[JOB];
  const parts = ctrl[PARTS];
  const a = ARGS;
  if (job === JOB_GEMM || job === JOB_GEMM_SMALL || job === JOB_PACK_A || job === JOB_PACK_B) {
    const M = ctrl[a + G_M], N = ctrl[a + G_N], K = ctrl[a + G_K];
    let m0 = 0, m1 = M, n0 = 0, n1 = N;
    if (ctrl[SPLIT] === 0) [n0, n1] = partRange(N, ctrl[a + G_NR], parts, idx);
    else [m0, m1] = partRange(M, ctrl[a + G_MR], parts, idx);
    const A = ctrl[a + G_A] >>> 0, B = ctrl[a + G_B] >>> 0, C = ctrl[a + G_C] >>> 0;
    if (job === JOB_GEMM) {
      ex.gemmX(ctrl[a + G_TA], ctrl[a + G_TB], M, N, K, A, ctrl[a + G_LDA], ctrl[a + G_APK] >>> 0,
        B, ctrl[a + G_LDB], ctrl[a + G_BPK] >>> 0, ctrl[a + G_BETA], C, ctrl[a + G_LDC], m0, m1, n0, n1, ws);
    } else if (job === JOB_GEMM_SMALL) {
      ex.gemmSmall(ctrl[a + G_TB], K, A, ctrl[a + G_LDA], B, ctrl[a + G_LDB], ctrl[a + G_BETA], C, ctrl[a + G_LDC],
        m0, m1, n0, n1);
    } else if (job === JOB_PACK_A) {
      ex.packAPart(ctrl[a + G_TA], M, K, A, ctrl[a + G_LDA], m0, m1, ctrl[a + G_APK] >>> 0);
    } else {
      ex.packBPart(ctrl[a + G_TB], K, N, B, ctrl[a + G_LDB], n0, n1, ctrl[a + G_BPK] >>> 0);
    }
  } else if (job === JOB_ROWS) {
    runRows(ex, ctrl, idx, parts);
  } else if (job === JOB_STEP1) {
    runStep1(ex, ctrl, idx, parts);
  }
}

// Arg slots for JOB_STEP1: kind (S_ROWS: decoder rows, else the cell kind of step1Layer), the number of
// quads (or row groups) to split, then step1Layer's (or step1Rows') arguments.
export const S_KIND = 0, S_N = 1, S_IP = 2, S_HP = 3, S_W = 4, S_X = 5, S_HPREV = 6, S_CPREV = 7, S_HOUT = 8,
  S_COUT = 9, S_XB = 10, S_BHN = 11;
export const S_ROWS = 9;
/** Packing jobs: S_PACK (step1Pack: cell kind in S_IP, H in S_HP, I in S_X, W_ih in S_W, W_hh in S_HPREV, dst in
 * S_HOUT) and S_PACK_ROWS (step1PackRows: V in S_IP, H in S_HP, W in S_W, dst in S_HOUT). */
export const S_PACK = 10, S_PACK_ROWS = 11;

function runStep1(ex: KernelExports, ctrl: Int32Array, idx: number, parts: number): void {
  const a = ARGS, n = ctrl[a + S_N];
  const i0 = Math.floor((n * idx) / parts), i1 = Math.floor((n * (idx + 1)) / parts);
  if (i1 <= i0) return;
  const kind = ctrl[a + S_KIND];
  if (kind === S_PACK) {
    ex.step1Pack(ctrl[a + S_IP], ctrl[a + S_HP], ctrl[a + S_X], ctrl[a + S_W] >>> 0, ctrl[a + S_HPREV] >>> 0, ctrl[a + S_HOUT] >>> 0, i0, i1);
  } else if (kind === S_PACK_ROWS) {
    ex.step1PackRows(ctrl[a + S_IP], ctrl[a + S_HP], ctrl[a + S_W] >>> 0, ctrl[a + S_HOUT] >>> 0, i0, i1);
  } else if (kind === S_ROWS) {
    ex.step1Rows(ctrl[a + S_HP], ctrl[a + S_W] >>> 0, ctrl[a + S_X] >>> 0, ctrl[a + S_XB] >>> 0, ctrl[a + S_HOUT] >>> 0, i0, i1);
  } else {
    ex.step1Layer(kind, ctrl[a + S_IP], ctrl[a + S_HP], ctrl[a + S_W] >>> 0, ctrl[a + S_X] >>> 0, ctrl[a + S_HPREV] >>> 0,
      ctrl[a + S_CPREV] >>> 0, ctrl[a + S_HOUT] >>> 0, ctrl[a + S_COUT] >>> 0, ctrl[a + S_XB] >>> 0, ctrl[a + S_BHN] >>> 0, i0, i1);
  }
}

// Row-parallel kernels: the rows [0, rows) are split; per-row strides in bytes are in the args.
export const ROW_LSTM_FWD = 1, ROW_LSTM_BWD = 2, ROW_GRU_FWD = 3, ROW_GRU_BWD = 4, ROW_SOFTMAX = 5;
/** Rows per block of the blocked softmax (its loss is summed block by block, in order). */
export const SOFTMAX_BLOCK = 16;
// Arg slots for JOB_ROWS: kind, rows, H, then up to 8 pointers.
export const R_KIND = 0, R_ROWS = 1, R_H = 2, R_P = 3;

function runRows(ex: KernelExports, ctrl: Int32Array, idx: number, parts: number): void {
  const a = ARGS;
  const kind = ctrl[a + R_KIND], rows = ctrl[a + R_ROWS], H = ctrl[a + R_H];
  if (kind === ROW_SOFTMAX) {
    // rows = number of blocks here; args: n, V, logits, targets, d, lossOut, scale (f64 in two ints)
    const [b0, b1] = partRange(rows, 1, parts, idx);
    if (b1 <= b0) return;
    const f = new Float64Array(new Int32Array([ctrl[a + R_P + 6], ctrl[a + R_P + 7]]).buffer)[0];
    ex.softmaxBlocks(ctrl[a + R_P], H, ctrl[a + R_P + 1] >>> 0, ctrl[a + R_P + 2] >>> 0, ctrl[a + R_P + 3] >>> 0, f,
      SOFTMAX_BLOCK, b0, b1, ctrl[a + R_P + 5] >>> 0);
    return;
  }
  const [r0, r1] = partRange(rows, 1, parts, idx);
  const n = r1 - r0;
  if (n <= 0) return;
  const p = (i: number, rowElems: number) => (ctrl[a + R_P + i] >>> 0) + r0 * rowElems * 4;
  switch (kind) {
    case ROW_LSTM_FWD:
      ex.lstmCellForward(n, H, p(0, 4 * H), p(1, H), p(2, H), p(3, H));
      break;
    case ROW_LSTM_BWD:
      ex.lstmCellBackward(n, H, p(0, 4 * H), p(1, H), p(2, H), p(3, H), p(4, H), p(5, 4 * H));
      break;
    case ROW_GRU_FWD:
      ex.gruCellForward(n, H, p(0, 3 * H), p(1, 3 * H), p(2, H), p(3, 3 * H), p(4, H));
      break;
    case ROW_GRU_BWD:
      ex.gruCellBackward(n, H, p(0, 3 * H), p(1, 3 * H), p(2, H), p(3, H), p(4, 3 * H), p(5, 3 * H), p(6, H));
      break;
  }
}
