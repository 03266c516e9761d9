// WasmBackend against the reference JsBackend('float32'): every kernel, odd sizes, offsets, all
// transpose cases, beta 0 (over NaN garbage) and 1; threads 1 and 2; plain and relaxed-SIMD builds.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createWasmBackend } from '../src/backend/wasm.js';
import type { WasmBackend } from '../src/backend/wasm.js';
import { JsBackend } from '../src/backend/js.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const js = new JsBackend('float32');

function randArray(n: number, r: () => number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

/** A backend buffer holding a copy of src. */
function up(be: WasmBackend, src: Float32Array): Float32Array {
  const b = be.alloc(src.length);
  b.set(src);
  return b;
}

/** Max over i of |a-e| / (rtol*|e| + atol); NaN must match NaN. Asserts <= 1. */
function close(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0, wi = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e)) {
      assert.ok(Number.isNaN(a), `${what}: [${i}] expected NaN (untouched), got ${a}`);
      continue;
    }
    if (a === e) continue;
    const r = Math.abs(a - e) / (rtol * Math.abs(e) + atol);
    if (!(r <= worst)) { worst = r; wi = i; }
  }
  assert.ok(worst <= 1, `${what}: [${wi}] got ${actual[wi]}, expected ${expected[wi]} (error ratio ${worst.toFixed(2)})`);
}

function rms(a: Float32Array): number {
  let s = 0, n = 0;
  for (const v of a) if (!Number.isNaN(v)) { s += v * v; n++; }
  return Math.sqrt(s / Math.max(1, n));
}

interface Config { threads: number; relaxed: boolean; workersOnly?: boolean }
const configs: Config[] = [
  { threads: 1, relaxed: false },
  { threads: 2, relaxed: false },
  { threads: 1, relaxed: true },
  { threads: 2, relaxed: true },
  // all parallel chunks on the worker threads, so that their results are surely checked
  { threads: 3, relaxed: false, workersOnly: true },
  { threads: 3, relaxed: true, workersOnly: true },
];

// ---- gemm cases with their reference results (computed once) ----
interface GemmCase {
  label: string; tA: boolean; tB: boolean; M: number; N: number; K: number; beta: 0 | 1;
  A: Float32Array; aOff: number; lda: number; B: Float32Array; bOff: number; ldb: number;
  C0: Float32Array; cOff: number; ldc: number; expected: Float32Array; atol: number;
}

function makeGemmCases(): GemmCase[] {
  const r = rng(1234);
  const shapes: [number, number, number][] = [
    [7, 13, 5], [1, 1, 1], [1, 37, 19], [2, 70, 3], [3, 40, 33], [4, 8, 4], [5, 9, 17], [13, 33, 300],
    [33, 17, 130], [130, 260, 70], [121, 8, 9], [9, 1025, 7],
  ];
  const cases: GemmCase[] = [];
  const add = (M: number, N: number, K: number, tA: boolean, tB: boolean, beta: 0 | 1, pad: number) => {
    const aOff = pad ? 5 : 0, bOff = pad ? 3 : 0, cOff = pad ? 7 : 0;
    const lda = (tA ? M : K) + pad, ldb = (tB ? K : N) + pad, ldc = N + (pad ? 2 : 0);
    const A = randArray(aOff + (tA ? K : M) * lda, r);
    const B = randArray(bOff + (tB ? N : K) * ldb, r);
    const C0 = beta ? randArray(cOff + M * ldc, r) : new Float32Array(cOff + M * ldc).fill(NaN);
    const expected = C0.slice();
    if (!beta) for (let i = 0; i < M; i++) expected.fill(0, cOff + i * ldc, cOff + i * ldc + N); // ref zeroes only C
    js.gemm(tA, tB, M, N, K, A, aOff, lda, B, bOff, ldb, beta, expected, cOff, ldc);
    if (!beta) {
      // gaps between rows (and before cOff) keep their NaN: mark them NaN in the expectation too
      for (let i = 0; i < expected.length; i++) {
        const rel = i - cOff;
        if (rel < 0 || rel % ldc >= N || rel >= M * ldc) expected[i] = NaN;
      }
    }
    const label = `${tA ? 'T' : 'N'}${tB ? 'T' : 'N'} ${M}x${N}x${K} beta=${beta}${pad ? ' offsets' : ''}`;
    cases.push({ label, tA, tB, M, N, K, beta, A, aOff, lda, B, bOff, ldb, C0, cOff, ldc, expected, atol: 1e-5 * (rms(expected) + 1e-3) });
  };
  for (const [M, N, K] of shapes) {
    for (const tA of [false, true]) for (const tB of [false, true]) {
      add(M, N, K, tA, tB, 0, 1);
      add(M, N, K, tA, tB, 1, 0);
    }
  }
  // the recurrent step shape and its backward shapes
  add(64, 2048, 512, false, true, 0, 0);
  add(64, 2048, 512, false, false, 1, 0);
  add(512, 256, 64, true, false, 1, 0);
  add(64, 512, 2048, false, false, 0, 1);
  add(32, 512, 128, false, true, 0, 0);
  return cases;
}

const gemmCases = makeGemmCases();
const GEMM_RTOL = Number(process.env.RNNKIT_TEST_GEMM_RTOL ?? 1e-5);

for (const cfg of configs) {
  describe(`WasmBackend threads=${cfg.threads} ${cfg.relaxed ? 'relaxed' : 'plain'}${cfg.workersOnly ? ' workers only' : ''}`, () => {
    let be: WasmBackend | null = null;
    let skip: string | false = false;
    before(async () => {
      try {
        be = await createWasmBackend({ threads: cfg.threads, relaxed: cfg.relaxed, mainThreadComputes: !cfg.workersOnly });
      } catch (e) {
        if (cfg.relaxed) skip = `relaxed SIMD unavailable: ${(e as Error).message}`;
        else throw e;
      }
    });
    let ran = false;
    after(() => {
      if (be && cfg.workersOnly && ran) {
        const st = be.chunkStats();
        assert.equal(st[0], 0, 'main thread ran no chunks');
        assert.ok(st[1] + st[2] > 0, `workers ran chunks: ${st}`);
      }
      be?.dispose();
    });

    const T = (name: string, fn: (be: WasmBackend) => void) =>
      test(name, (t) => {
        if (skip || !be) { t.skip(skip || 'no backend'); return; }
        ran = true;
        fn(be);
      });

    T('basics', (be) => {
      assert.equal(be.dtype, 'float32');
      assert.equal(be.threads, cfg.threads);
      assert.equal(be.relaxed, cfg.relaxed);
      const a = be.alloc(10);
      assert.ok(a instanceof Float32Array && a.length === 10 && a.every((v) => v === 0));
      assert.ok(a.buffer instanceof SharedArrayBuffer);
    });

    T('gemm: all transpose cases, odd sizes, offsets, beta 0 over NaN and 1', (be) => {
      for (const c of gemmCases) {
        const A = up(be, c.A), B = up(be, c.B), C = up(be, c.C0);
        be.gemm(c.tA, c.tB, c.M, c.N, c.K, A, c.aOff, c.lda, B, c.bOff, c.ldb, c.beta, C, c.cOff, c.ldc);
        close(C, c.expected, GEMM_RTOL, c.atol * GEMM_RTOL / 1e-5, `gemm ${c.label}`);
        be.free(A); be.free(B); be.free(C);
      }
    });

    T('packB + gemmPacked: same cases as gemm', (be) => {
      for (const c of gemmCases) {
        const A = up(be, c.A), B = up(be, c.B), C = up(be, c.C0);
        const P = be.packB(c.tB, c.K, c.N, B, c.bOff, c.ldb);
        B.fill(NaN); // the packed copy is a snapshot
        be.gemmPacked(c.tA, c.M, A, c.aOff, c.lda, P, c.beta, C, c.cOff, c.ldc);
        close(C, c.expected, GEMM_RTOL, c.atol * GEMM_RTOL / 1e-5, `gemmPacked ${c.label}`);
        be.freePacked(P);
        be.free(A); be.free(B); be.free(C);
      }
    });

    T('gemm: K = 0 and empty shapes', (be) => {
      const A = be.alloc(16), B = be.alloc(16), C = be.alloc(6);
      C.fill(NaN);
      be.gemm(false, false, 2, 3, 0, A, 0, 1, B, 0, 3, 0, C, 0, 3);
      assert.deepEqual(Array.from(C), [0, 0, 0, 0, 0, 0]);
      C.fill(2);
      be.gemm(false, true, 2, 3, 0, A, 0, 1, B, 0, 1, 1, C, 0, 3);
      assert.deepEqual(Array.from(C), [2, 2, 2, 2, 2, 2]);
      be.gemm(false, false, 0, 3, 2, A, 0, 2, B, 0, 3, 0, C, 0, 3);
      assert.deepEqual(Array.from(C), [2, 2, 2, 2, 2, 2]);
    });

    T('cell kernels: lstm, gru, rnn forward and backward', (be) => {
      const r = rng(99);
      for (const [B, H, off] of [[3, 5, 3], [4, 8, 0], [2, 13, 1], [32, 128, 0], [64, 512, 2]] as [number, number, number][]) {
        const n = B * H;
        // LSTM forward
        const gates = randArray(off + 4 * n, r, -4, 4), cPrev = randArray(off + n, r, -2, 2);
        const c = new Float32Array(off + n), h = new Float32Array(off + n);
        const gW = up(be, gates), cpW = up(be, cPrev), cW = up(be, c), hW = up(be, h);
        js.lstmCellForward(B, H, gates, off, cPrev, off, c, off, h, off);
        be.lstmCellForward(B, H, gW, off, cpW, off, cW, off, hW, off);
        close(gW, gates, 2e-6, 1e-6, `lstm fwd gates B=${B} H=${H}`);
        close(cW, c, 2e-6, 1e-6, `lstm fwd c B=${B} H=${H}`);
        close(hW, h, 2e-6, 1e-6, `lstm fwd h B=${B} H=${H}`);
        // LSTM backward (uses the activated gates)
        const dh = randArray(off + n, r), dc = randArray(off + n, r), dg = new Float32Array(off + 4 * n).fill(NaN);
        const dhW = up(be, dh), dcW = up(be, dc), dgW = up(be, dg);
        js.lstmCellBackward(B, H, gates, off, cPrev, off, c, off, dh, off, dc, off, dg, off);
        be.lstmCellBackward(B, H, gW, off, cpW, off, cW, off, dhW, off, dcW, off, dgW, off);
        close(dgW, dg, 2e-6, 2e-6, `lstm bwd dgates B=${B} H=${H}`);
        close(dcW, dc, 2e-6, 2e-6, `lstm bwd dc B=${B} H=${H}`);
        // LSTM output with a normalized cell state
        const cn = randArray(off + n, r, -3, 3), h3 = new Float32Array(off + n).fill(NaN);
        const cnW = up(be, cn), h3W = up(be, h3);
        js.lstmOutput(B, H, gates, off, cn, off, h3, off);
        be.lstmOutput(B, H, gW, off, cnW, off, h3W, off);
        close(h3W, h3, 2e-6, 1e-6, `lstmOutput B=${B} H=${H}`);
        const dcn = new Float32Array(off + n), dO = new Float32Array(off + n);
        const dcnW = up(be, dcn), dOW = up(be, dO);
        js.lstmOutputBackward(B, H, gates, off, cn, off, dh, off, dcn, off, dO, off);
        be.lstmOutputBackward(B, H, gW, off, cnW, off, dhW, off, dcnW, off, dOW, off);
        close(dcnW, dcn, 2e-6, 2e-6, `lstmOutputBackward dcn B=${B} H=${H}`);
        close(dOW, dO, 2e-6, 2e-6, `lstmOutputBackward dO B=${B} H=${H}`);
        // GRU forward
        const xp = randArray(off + 3 * n, r, -3, 3), hp = randArray(off + 3 * n, r, -3, 3), hPrev = randArray(off + n, r);
        const act = new Float32Array(off + 3 * n), h2 = new Float32Array(off + n);
        const xpW = up(be, xp), hpW = up(be, hp), hvW = up(be, hPrev), actW = up(be, act), h2W = up(be, h2);
        js.gruCellForward(B, H, xp, off, hp, off, hPrev, off, act, off, h2, off);
        be.gruCellForward(B, H, xpW, off, hpW, off, hvW, off, actW, off, h2W, off);
        close(actW, act, 2e-6, 1e-6, `gru fwd act B=${B} H=${H}`);
        close(h2W, h2, 2e-6, 1e-6, `gru fwd h B=${B} H=${H}`);
        // GRU backward
        const dh2 = randArray(off + n, r);
        const dxp = new Float32Array(off + 3 * n), dhp = new Float32Array(off + 3 * n), dhv = new Float32Array(off + n);
        const dh2W = up(be, dh2), dxpW = up(be, dxp), dhpW = up(be, dhp), dhvW = up(be, dhv);
        js.gruCellBackward(B, H, act, off, hp, off, hPrev, off, dh2, off, dxp, off, dhp, off, dhv, off);
        be.gruCellBackward(B, H, actW, off, hpW, off, hvW, off, dh2W, off, dxpW, off, dhpW, off, dhvW, off);
        close(dxpW, dxp, 2e-6, 2e-6, `gru bwd dxp B=${B} H=${H}`);
        close(dhpW, dhp, 2e-6, 2e-6, `gru bwd dhp B=${B} H=${H}`);
        close(dhvW, dhv, 2e-6, 2e-6, `gru bwd dhPrev B=${B} H=${H}`);
        // RNN
        for (const a of ['tanh', 'relu'] as const) {
          const x = randArray(off + n, r, -5, 5);
          const xW = up(be, x);
          js.rnnCellForward(a, B, H, x, off);
          be.rnnCellForward(a, B, H, xW, off);
          close(xW, x, 2e-6, 1e-7, `rnn fwd ${a} B=${B} H=${H}`);
          const d = randArray(off + n, r), da = new Float32Array(off + n);
          const dW = up(be, d), daW = up(be, da);
          js.rnnCellBackward(a, B, H, x, off, d, off, da, off);
          be.rnnCellBackward(a, B, H, xW, off, dW, off, daW, off);
          close(daW, da, 2e-6, 1e-6, `rnn bwd ${a} B=${B} H=${H}`);
        }
      }
    });

    T('tanh/sigmoid accuracy over a wide range (via rnn and lstm kernels)', (be) => {
      const n = 20001;
      const x = new Float32Array(n);
      for (let i = 0; i < n; i++) x[i] = -20 + (40 * i) / (n - 1);
      x[0] = 0; x[1] = -0; x[2] = 1e-8; x[3] = -3e-5; x[4] = 100; x[5] = -100; x[6] = 89; x[7] = -89;
      const t = up(be, x), tr = x.slice();
      be.rnnCellForward('tanh', 1, n, t, 0);
      js.rnnCellForward('tanh', 1, n, tr, 0);
      close(t, tr, 1e-6, 1e-30, 'tanh');
      // sigmoid: an LSTM step with only the input gate varying
      const H = n, g = new Float32Array(4 * H);
      g.set(x, 0);
      const gW = up(be, g), cp = be.alloc(H), c = be.alloc(H), h = be.alloc(H);
      const cpJ = new Float32Array(H), cJ = new Float32Array(H), hJ = new Float32Array(H);
      be.lstmCellForward(1, H, gW, 0, cp, 0, c, 0, h, 0);
      js.lstmCellForward(1, H, g, 0, cpJ, 0, cJ, 0, hJ, 0);
      close(gW.subarray(0, H), g.subarray(0, H), 1e-6, 1e-37, 'sigmoid');
    });

    T('normalization: layer norm, column statistics, batch norm', (be) => {
      const r = rng(21);
      for (const [rows, n] of [[3, 5], [17, 64], [1, 1], [40, 33]]) {
        const m = rows * n;
        // layer norm forward (offsets everywhere) and backward, in place dX = dY
        const X = randArray(2 + m, r, -3, 3), g = randArray(1 + n, r), b = randArray(1 + n, r);
        const Y = new Float32Array(3 + m).fill(NaN), xh = new Float32Array(1 + m), rs = new Float32Array(2 + rows);
        const XW = up(be, X), gW = up(be, g), bW = up(be, b), YW = up(be, Y), xhW = up(be, xh), rsW = up(be, rs);
        js.layerNormForward(rows, n, X, 2, g, b, 1, Y, 3, xh, 1, rs, 2, 1e-5);
        be.layerNormForward(rows, n, XW, 2, gW, bW, 1, YW, 3, xhW, 1, rsW, 2, 1e-5);
        close(YW, Y, 1e-6, 1e-7, `layerNormForward Y ${rows}x${n}`);
        close(xhW, xh, 1e-6, 1e-7, `layerNormForward xhat ${rows}x${n}`);
        close(rsW, rs, 1e-6, 1e-7, `layerNormForward rstd ${rows}x${n}`);
        const dY = randArray(m, r), dG = randArray(1 + n, r), dB = randArray(1 + n, r);
        const dYW = up(be, dY), dGW = up(be, dG), dBW = up(be, dB);
        js.layerNormBackward(rows, n, dY, 0, xh, 1, rs, 2, g, 1, dG, dB, dY, 0);
        be.layerNormBackward(rows, n, dYW, 0, xhW, 1, rsW, 2, gW, 1, dGW, dBW, dYW, 0);
        close(dYW, dY, 1e-6, 1e-6, `layerNormBackward dX ${rows}x${n}`);
        close(dGW, dG, 1e-6, 1e-6, `layerNormBackward dGamma ${rows}x${n}`);
        close(dBW, dB, 1e-6, 1e-6, `layerNormBackward dBeta ${rows}x${n}`);
        // batch norm: statistics (with and without a mask; all rows masked), normalize, backward
        for (const maskKind of ['none', 'some', 'all-off']) {
          const mask = maskKind === 'none' ? null : new Uint8Array(rows).map(() => (maskKind === 'all-off' ? 0 : r() < 0.7 ? 1 : 0));
          const mean = new Float32Array(n), vr = new Float32Array(n), meanW = be.alloc(n), vrW = be.alloc(n);
          js.columnStats(rows, n, X, 2, mask, mean, vr);
          be.columnStats(rows, n, XW, 2, mask, meanW, vrW);
          close(meanW, mean, 1e-6, 1e-7, `columnStats mean ${rows}x${n} ${maskKind}`);
          close(vrW, vr, 1e-6, 1e-7, `columnStats variance ${rows}x${n} ${maskKind}`);
          const Y2 = new Float32Array(m), xh2 = new Float32Array(m), rs2 = new Float32Array(1 + n);
          const Y2W = up(be, Y2), xh2W = up(be, xh2), rs2W = up(be, rs2);
          js.normalizeColumns(rows, n, X, 2, mean, vr, 1e-5, g, b, 1, Y2, 0, xh2, 0, rs2, 1);
          be.normalizeColumns(rows, n, XW, 2, meanW, vrW, 1e-5, gW, bW, 1, Y2W, 0, xh2W, 0, rs2W, 1);
          close(Y2W, Y2, 1e-6, 1e-6, `normalizeColumns Y ${rows}x${n} ${maskKind}`);
          close(xh2W, xh2, 1e-6, 1e-6, `normalizeColumns xhat ${rows}x${n} ${maskKind}`);
          close(rs2W, rs2, 1e-6, 1e-7, `normalizeColumns rstd ${rows}x${n} ${maskKind}`);
          for (const training of [true, false]) {
            const d = randArray(1 + m, r), dX = new Float32Array(2 + m).fill(NaN), dg = randArray(1 + n, r), db = randArray(1 + n, r);
            const dW = up(be, d), dXW = up(be, dX), dgW = up(be, dg), dbW = up(be, db);
            js.batchNormBackward(rows, n, d, 1, xh2, 0, rs2, 1, g, 1, mask, training, dg, db, dX, 2);
            be.batchNormBackward(rows, n, dW, 1, xh2W, 0, rs2W, 1, gW, 1, mask, training, dgW, dbW, dXW, 2);
            close(dXW, dX, 1e-6, 1e-6, `batchNormBackward dX ${rows}x${n} ${maskKind} training=${training}`);
            close(dgW, dg, 1e-6, 1e-6, `batchNormBackward dGamma ${rows}x${n} ${maskKind}`);
            close(dbW, db, 1e-6, 1e-6, `batchNormBackward dBeta ${rows}x${n} ${maskKind}`);
          }
        }
      }
    });

    T('addRowVector, sumRows', (be) => {
      const r = rng(7);
      for (const [rows, n] of [[3, 5], [7, 33], [64, 2048], [1, 1]]) {
        const X = randArray(2 + rows * n, r), b = randArray(1 + n, r), Y = new Float32Array(3 + rows * n).fill(NaN);
        const XW = up(be, X), bW = up(be, b), YW = up(be, Y);
        js.addRowVector(rows, n, X, 2, b, 1, Y, 3);
        be.addRowVector(rows, n, XW, 2, bW, 1, YW, 3);
        close(YW, Y, 0, 0, `addRowVector ${rows}x${n}`);
        be.addRowVector(rows, n, XW, 2, bW, 1, XW, 2); // in place
        js.addRowVector(rows, n, X, 2, b, 1, X, 2);
        close(XW, X, 0, 0, `addRowVector in place ${rows}x${n}`);
        const db = randArray(4 + n, r), dbW = up(be, db);
        js.sumRows(rows, n, X, 2, db, 4);
        be.sumRows(rows, n, XW, 2, dbW, 4);
        close(dbW, db, 0, 0, `sumRows ${rows}x${n}`);
      }
    });

    T('embedding forward and backward', (be) => {
      const r = rng(11);
      for (const [n, dim, rows] of [[5, 3, 7], [129, 64, 256]]) {
        const table = randArray(rows * dim, r), ids = new Int32Array(n);
        for (let i = 0; i < n; i++) ids[i] = Math.floor(r() * rows);
        ids[0] = rows - 1; if (n > 2) ids[2] = ids[1];
        const out = new Float32Array(1 + n * dim).fill(NaN);
        const tW = up(be, table), oW = up(be, out);
        js.embeddingForward(n, dim, ids, table, out, 1);
        be.embeddingForward(n, dim, ids, tW, oW, 1);
        close(oW, out, 0, 0, 'embeddingForward');
        const dOut = randArray(2 + n * dim, r), dT = randArray(rows * dim, r);
        const dOW = up(be, dOut), dTW = up(be, dT);
        js.embeddingBackward(n, dim, ids, dOut, 2, dT);
        be.embeddingBackward(n, dim, ids, dOW, 2, dTW);
        close(dTW, dT, 0, 0, 'embeddingBackward');
      }
      const bad = new Int32Array([0, 9]);
      assert.throws(() => be.embeddingForward(2, 3, bad, be.alloc(21), be.alloc(6), 0), RangeError);
    });

    T('softmaxCrossEntropy', (be) => {
      const r = rng(5);
      for (const [n, V] of [[37, 67], [64, 256], [3, 1], [5, 6], [203, 256]]) {
        const logits = randArray(3 + n * V, r, -8, 8);
        if (n > 4) logits[3 + 4 * V] = 60; // a big logit
        const targets = new Int32Array(n);
        for (let i = 0; i < n; i++) targets[i] = Math.floor(r() * V);
        if (n > 2) targets[1] = -1; // ignored row
        const scale = 1 / n;
        const d = new Float32Array(2 + n * V).fill(NaN);
        const lW = up(be, logits), dW = up(be, d);
        const lossJ = js.softmaxCrossEntropy(n, V, logits, 3, targets, d, 2, scale);
        const lossW = be.softmaxCrossEntropy(n, V, lW, 3, targets, dW, 2, scale);
        assert.ok(Math.abs(lossW - lossJ) <= 1e-6 * Math.abs(lossJ) + 1e-6, `loss ${lossW} vs ${lossJ}`);
        close(dW, d, 1e-5, 1e-7 * scale, `dLogits ${n}x${V}`);
        const loss2 = be.softmaxCrossEntropy(n, V, lW, 3, targets, null, 0, 1);
        assert.ok(Math.abs(loss2 - lossJ) <= 1e-6 * Math.abs(lossJ) + 1e-6);
        // in place: dLogits === logits
        const l2 = logits.slice(), l2W = up(be, l2);
        js.softmaxCrossEntropy(n, V, l2, 3, targets, l2, 3, scale);
        be.softmaxCrossEntropy(n, V, l2W, 3, targets, l2W, 3, scale);
        close(l2W, l2, 1e-5, 1e-7 * scale, `in-place dLogits ${n}x${V}`);
      }
    });

    T('mul, addTo, scale, sumSquares, fill, copy', (be) => {
      const r = rng(3);
      for (const n of [1, 3, 4, 7, 1000, 4099]) {
        const a = randArray(n + 1, r), b = randArray(n + 2, r), y = new Float32Array(n + 3).fill(NaN);
        const aW = up(be, a), bW = up(be, b), yW = up(be, y);
        js.mul(n, a, 1, b, 2, y, 3); be.mul(n, aW, 1, bW, 2, yW, 3);
        close(yW, y, 0, 0, `mul ${n}`);
        js.addTo(n, a, 1, b, 2); be.addTo(n, aW, 1, bW, 2);
        close(bW, b, 0, 0, `addTo ${n}`);
        js.scale(n, 0.3217, b, 1); be.scale(n, 0.3217, bW, 1);
        close(bW, b, 0, 0, `scale ${n}`);
        const sJ = js.sumSquares(n, b, 2), sW = be.sumSquares(n, bW, 2);
        assert.ok(Math.abs(sJ - sW) <= 1e-12 * sJ, `sumSquares ${sW} vs ${sJ}`);
        js.fill(n, 0.1, y, 2); be.fill(n, 0.1, yW, 2);
        close(yW, y, 0, 0, `fill ${n}`);
        js.copy(n, a, 1, y, 0); be.copy(n, aW, 1, yW, 0);
        close(yW, y, 0, 0, `copy ${n}`);
        const rows = 3, X = randArray(2 + rows * (n + 3), r), Y = new Float32Array(1 + rows * (n + 5)).fill(NaN);
        const XW = up(be, X), YW = up(be, Y);
        js.copy2d(rows, n, X, 2, n + 3, Y, 1, n + 5); be.copy2d(rows, n, XW, 2, n + 3, YW, 1, n + 5);
        close(YW, Y, 0, 0, `copy2d ${n}`);
      }
    });

    T('adam, sgd', (be) => {
      const r = rng(8);
      for (const n of [1, 5, 1001]) {
        const p = randArray(n, r), g = randArray(n, r), m = randArray(n, r, -0.1, 0.1), v = randArray(n, r, 0, 0.01);
        const pW = up(be, p), gW = up(be, g), mW = up(be, m), vW = up(be, v);
        for (let step = 1; step <= 3; step++) {
          js.adam(n, p, g, m, v, 2e-3, 0.9, 0.999, 1e-8, step === 2 ? 0.01 : 0, step);
          be.adam(n, pW, gW, mW, vW, 2e-3, 0.9, 0.999, 1e-8, step === 2 ? 0.01 : 0, step);
        }
        close(pW, p, 1e-7, 1e-9, 'adam p'); close(mW, m, 1e-7, 1e-9, 'adam m'); close(vW, v, 1e-7, 1e-12, 'adam v');
        const mom = new Float32Array(n), momW = up(be, mom);
        for (let i = 0; i < 2; i++) {
          js.sgd(n, p, g, mom, 0.1, 0.9, 1e-4); be.sgd(n, pW, gW, momW, 0.1, 0.9, 1e-4);
        }
        js.sgd(n, p, g, null, 0.05, 0, 0); be.sgd(n, pW, gW, null, 0.05, 0, 0);
        close(pW, p, 1e-7, 1e-9, 'sgd p'); close(momW, mom, 1e-7, 1e-9, 'sgd mom');
      }
    });

    T('foreign buffers and out-of-range offsets throw', (be) => {
      const a = be.alloc(8);
      assert.throws(() => be.addTo(4, new Float32Array(8), 0, a, 0), TypeError);
      assert.throws(() => be.addTo(4, new Float32Array(new SharedArrayBuffer(32)), 0, a, 0), TypeError);
      assert.throws(() => be.addTo(4, a, 6, a, 0), RangeError);
      assert.throws(() => be.gemm(false, false, 3, 3, 3, a, 0, 3, a, 0, 3, 0, a, 0, 3), RangeError);
    });

    T('allocator: random alloc/free keeps live buffers intact and new ones zero', (be) => {
      if (cfg.threads !== 1 || cfg.relaxed) return; // the allocator does not depend on the build
      const r = rng(77);
      const live: { buf: Float32Array; tag: number }[] = [];
      let tag = 1;
      for (let step = 0; step < 3000; step++) {
        if (live.length > 0 && r() < 0.45) {
          const i = Math.floor(r() * live.length);
          const { buf, tag: t } = live[i];
          assert.ok(buf[0] === t && buf[buf.length - 1] === t, `buffer ${t} intact before free`);
          be.free(buf);
          live.splice(i, 1);
        } else {
          const n = 1 + Math.floor(r() < 0.1 ? r() * 200000 : r() * 3000);
          const buf = be.alloc(n);
          assert.ok(buf[0] === 0 && buf[n - 1] === 0 && buf[n >> 1] === 0, `fresh buffer of ${n} is zero`);
          if (n < 4096) assert.ok(buf.every((v) => v === 0), `fresh buffer of ${n} is all zero`);
          buf.fill(tag);
          live.push({ buf, tag: tag++ });
        }
      }
      // no two live buffers overlap and every one kept its contents
      const spans = live.map(({ buf }) => [buf.byteOffset, buf.byteOffset + buf.byteLength]).sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < spans.length; i++) assert.ok(spans[i][0] >= spans[i - 1][1], 'buffers overlap');
      for (const { buf, tag: t } of live) {
        assert.ok(buf.every((v) => v === t), `buffer ${t} intact`);
        be.free(buf);
      }
    });

    T('memory growth keeps old views valid; free and reuse zero-fills', (be) => {
      const a = be.alloc(1000);
      a.fill(3);
      const big = be.alloc(40 << 20); // 160 MiB: forces the memory to grow
      big[big.length - 1] = 1;
      const b = be.alloc(1000);
      be.addTo(1000, a, 0, b, 0);
      assert.equal(a[999], 3);
      assert.equal(b[999], 3);
      be.free(big);
      be.free(a);
      const c = be.alloc(1000);
      assert.ok(c.every((v) => v === 0));
      be.free(b); be.free(c);
      // the last block goes back to the bump pointer: the next allocation there must be zero too
      const d = be.alloc(5000);
      d.fill(7);
      be.free(d);
      const e = be.alloc(5000);
      assert.ok(e.every((v) => v === 0));
      be.free(e);
    });
  });
}

describe('WasmBackend thread pool under a stream of small jobs', () => {
  test('3000 back-to-back parallel jobs of changing shapes give the serial results', async () => {
    const b1 = await createWasmBackend({ threads: 1, relaxed: false });
    const b3 = await createWasmBackend({ threads: 3, relaxed: false });
    const r = rng(9);
    const A1 = b1.alloc(96 * 160), B1 = b1.alloc(160 * 160), A3 = b3.alloc(96 * 160), B3 = b3.alloc(160 * 160);
    const src = randArray(96 * 160, r), srcB = randArray(160 * 160, r);
    A1.set(src); A3.set(src); B1.set(srcB); B3.set(srcB);
    const C1 = b1.alloc(96 * 160), C3 = b3.alloc(96 * 160);
    for (let it = 0; it < 3000; it++) {
      const M = 8 + Math.floor(r() * 88), N = 16 + Math.floor(r() * 144), K = 64 + Math.floor(r() * 96);
      const tB = r() < 0.5;
      b1.gemm(false, tB, M, N, K, A1, 0, K, B1, 0, tB ? K : N, 0, C1, 0, N);
      b3.gemm(false, tB, M, N, K, A3, 0, K, B3, 0, tB ? K : N, 0, C3, 0, N);
      for (let i = 0; i < M * N; i++) {
        if (C1[i] !== C3[i]) assert.fail(`job ${it} (${M}x${N}x${K}): [${i}] ${C3[i]} != ${C1[i]}`);
      }
      if (it % 7 === 0) {
        // a row-parallel kernel in between
        b1.lstmCellForward(32, 128, B1, 0, A1, 0, C1, 0, C1, 4096);
        b3.lstmCellForward(32, 128, B3, 0, A3, 0, C3, 0, C3, 4096);
        B1.set(srcB); B3.set(srcB);
      }
    }
    assert.ok(b3.chunkStats().slice(1).some((v) => v > 0), `workers took part: ${b3.chunkStats()}`);
    b1.dispose(); b3.dispose();
  });
});

describe('WasmBackend results do not depend on the number of threads', () => {
  test('gemm and softmaxCrossEntropy bitwise equal on 1 and 3 threads', async () => {
    const r = rng(42);
    for (const relaxed of [false, true]) {
      let b1: WasmBackend, b3: WasmBackend;
      try {
        b1 = await createWasmBackend({ threads: 1, relaxed });
        b3 = await createWasmBackend({ threads: 3, relaxed, mainThreadComputes: false });
      } catch (e) {
        if (relaxed) continue;
        throw e;
      }
      const run = (be: WasmBackend, tA: boolean, tB: boolean, M: number, N: number, K: number, A: Float32Array, B: Float32Array) => {
        const a = up(be, A), b = up(be, B), c = be.alloc(M * N);
        be.gemm(tA, tB, M, N, K, a, 0, tA ? M : K, b, 0, tB ? K : N, 0, c, 0, N);
        return c.slice();
      };
      for (const [tA, tB, M, N, K] of [[false, true, 64, 2048, 512], [true, false, 130, 260, 700], [false, false, 600, 40, 30]] as [boolean, boolean, number, number, number][]) {
        const A = randArray(M * K, r), B = randArray(K * N, r);
        assert.deepEqual(run(b3, tA, tB, M, N, K, A, B), run(b1, tA, tB, M, N, K, A, B), `gemm ${M}x${N}x${K}`);
      }
      const n = 333, V = 256, L = randArray(n * V, r, -5, 5), tg = new Int32Array(n).map(() => Math.floor(r() * V));
      const sm = (be: WasmBackend) => {
        const l = up(be, L), d = be.alloc(n * V);
        const loss = be.softmaxCrossEntropy(n, V, l, 0, tg, d, 0, 1 / n);
        return [loss, d.slice()] as const;
      };
      const [l1, d1] = sm(b1), [l3, d3] = sm(b3);
      assert.equal(l3, l1);
      assert.deepEqual(d3, d1);
      assert.ok(b3.chunkStats().slice(1).some((v) => v > 0));
      b1.dispose(); b3.dispose();
    }
  });
});
