// rnnkit WebAssembly SIMD kernels (AssemblyScript, stub runtime, imported shared memory).
//
// Everything works on raw byte pointers into the one shared memory; the JS side (src/backend/wasm.ts)
// owns allocation. No managed objects, no static data that is written at run time: every worker
// thread instantiates this module on the same memory.
//
// Two builds come from this one source: plain SIMD128 (mul + add, 5x8 register tile) and relaxed
// SIMD (f32x4.relaxed_madd = FMA, 6x8 tile). See /work/shared/notes/engine-notes.md for why.

// ---------------------------------------------------------------------------------------------
// GEMM: C[M,N] = beta*C + op(A)[M,K] · op(B)[K,N], Goto-style packing, register-blocked kernel.
// ---------------------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline const RELAXED: bool = ASC_FEATURE_RELAXED_SIMD;
// @ts-ignore: decorator
@inline const MR: i32 = 4;
// @ts-ignore: decorator
@inline const NR: i32 = 8;
// @ts-ignore: decorator
@inline const KC: i32 = 256;
// @ts-ignore: decorator
@inline const MC: i32 = 120; // multiple of 5 and 6
// @ts-ignore: decorator
@inline const NC: i32 = 1024; // multiple of NR

export function tileM(): i32 { return MR; }
export function tileN(): i32 { return NR; }
export function isRelaxed(): i32 { return RELAXED ? 1 : 0; }
export function heapBase(): usize { return __heap_base; }
/** Bytes of workspace one thread needs for gemm (packed A block, packed B block, edge tile). */
export function gemmWorkspaceBytes(): i32 { return (MC * KC + KC * NC + MR * NR) * 4 + 64; }

// @ts-ignore: decorator
@inline function fma(a: v128, b: v128, c: v128): v128 {
  if (RELAXED) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/**
 * MR x 8 tile over kc: c (row stride ldc bytes) = (store ? 0 : c) + Ap·Bp.
 * 4x8: V8's scheduler issues all broadcast loads of an iteration first, so the live set is
 * 8 accumulators + 2 B vectors + 4 broadcasts (+1 product temporary without FMA) <= 15 registers;
 * larger tiles spill (checked with --print-wasm-code).
 */
function kernel(kc: i32, ap: usize, bp: usize, c: usize, ldc: usize, store: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(bp), b1 = v128.load(bp, 16);
    let a = v128.load32_splat(ap);
    c00 = fma(a, b0, c00); c01 = fma(a, b1, c01);
    a = v128.load32_splat(ap, 4);
    c10 = fma(a, b0, c10); c11 = fma(a, b1, c11);
    a = v128.load32_splat(ap, 8);
    c20 = fma(a, b0, c20); c21 = fma(a, b1, c21);
    a = v128.load32_splat(ap, 12);
    c30 = fma(a, b0, c30); c31 = fma(a, b1, c31);
    ap += 16; bp += 32;
  }
  if (store) {
    v128.store(c, c00); v128.store(c, c01, 16); c += ldc;
    v128.store(c, c10); v128.store(c, c11, 16); c += ldc;
    v128.store(c, c20); v128.store(c, c21, 16); c += ldc;
    v128.store(c, c30); v128.store(c, c31, 16);
  } else {
    v128.store(c, f32x4.add(v128.load(c), c00)); v128.store(c, f32x4.add(v128.load(c, 16), c01), 16); c += ldc;
    v128.store(c, f32x4.add(v128.load(c), c10)); v128.store(c, f32x4.add(v128.load(c, 16), c11), 16); c += ldc;
    v128.store(c, f32x4.add(v128.load(c), c20)); v128.store(c, f32x4.add(v128.load(c, 16), c21), 16); c += ldc;
    v128.store(c, f32x4.add(v128.load(c), c30)); v128.store(c, f32x4.add(v128.load(c, 16), c31), 16);
  }
}

// @ts-ignore: decorator
@inline function at(base: usize, idx: i32): usize { return base + (<usize>idx << 2); }

/** Pack rows i0..i0+mc, columns p0..p0+kc of op(A) into MR-row slivers: sliver s, element (r,k) at [k*MR+r]. */
function packA(tA: i32, A: usize, lda: i32, i0: i32, mc: i32, p0: i32, kc: i32, Ap: usize): void {
  for (let ir = 0; ir < mc; ir += MR) {
    const mr = min(MR, mc - ir);
    const dst = Ap + (<usize>(ir * kc) << 2);
    if (!tA && mr == 4 && MR == 4) {
      // 4 rows of A read along k, transposed 4x4 at a time into [k][r]
      const step = <usize>lda << 2;
      const r0 = at(A, (i0 + ir) * lda + p0), r1 = r0 + step, r2 = r1 + step, r3 = r2 + step;
      let k = 0;
      for (; k + 4 <= kc; k += 4) {
        const o = <usize>k << 2;
        const d = dst + (o << 2);
        const x0 = v128.load(r0 + o), x1 = v128.load(r1 + o), x2 = v128.load(r2 + o), x3 = v128.load(r3 + o);
        const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
        const t1 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
        const t2 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
        const t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
        v128.store(d, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
        v128.store(d, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 16);
        v128.store(d, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 32);
        v128.store(d, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 48);
      }
      for (; k < kc; k++) {
        const o = <usize>k << 2;
        const d = dst + (o << 2);
        store<f32>(d, load<f32>(r0 + o)); store<f32>(d, load<f32>(r1 + o), 4);
        store<f32>(d, load<f32>(r2 + o), 8); store<f32>(d, load<f32>(r3 + o), 12);
      }
    } else if (!tA) {
      for (let r = 0; r < mr; r++) {
        let src = at(A, (i0 + ir + r) * lda + p0);
        let d = dst + (<usize>r << 2);
        for (let k = 0; k < kc; k++) {
          store<f32>(d, load<f32>(src));
          src += 4; d += MR * 4;
        }
      }
    } else {
      let src = at(A, p0 * lda + i0 + ir);
      let d = dst;
      const step = <usize>lda << 2;
      if (mr == MR) {
        for (let k = 0; k < kc; k++) {
          // MR consecutive floats of row p0+k of A
          v128.store(d, v128.load(src));
          if (MR == 6) store<u64>(d, load<u64>(src, 16), 16); else if (MR == 5) store<f32>(d, load<f32>(src, 16), 16);
          src += step; d += MR * 4;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          for (let r = 0; r < mr; r++) store<f32>(d + (<usize>r << 2), load<f32>(src + (<usize>r << 2)));
          src += step; d += MR * 4;
        }
      }
    }
    if (mr < MR) {
      for (let k = 0; k < kc; k++) {
        const d = dst + (<usize>(k * MR) << 2);
        for (let r = mr; r < MR; r++) store<f32>(d + (<usize>r << 2), 0);
      }
    }
  }
}

/** Pack rows p0..p0+kc, columns j0..j0+nc of op(B) into NR-column panels: element (k,c) at [k*NR+c]. */
function packB(tB: i32, B: usize, ldb: i32, p0: i32, kc: i32, j0: i32, nc: i32, Bp: usize): void {
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = min(NR, nc - jr);
    const dst = Bp + (<usize>(jr * kc) << 2);
    if (!tB) {
      let src = at(B, p0 * ldb + j0 + jr);
      const step = <usize>ldb << 2;
      let d = dst;
      if (nr == NR) {
        for (let k = 0; k < kc; k++) {
          v128.store(d, v128.load(src));
          v128.store(d, v128.load(src, 16), 16);
          src += step; d += 32;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          let c = 0;
          for (; c < nr; c++) store<f32>(d + (<usize>c << 2), load<f32>(src + (<usize>c << 2)));
          for (; c < NR; c++) store<f32>(d + (<usize>c << 2), 0);
          src += step; d += 32;
        }
      }
    } else {
      // op(B)[k, j] = B[j*ldb + k]: NR rows of B, read along k, transposed 4x4 at a time.
      const step = <usize>ldb << 2;
      const base = at(B, (j0 + jr) * ldb + p0);
      if (nr == NR) {
        let k = 0;
        const r0 = base, r1 = r0 + step, r2 = r1 + step, r3 = r2 + step;
        const r4 = r3 + step, r5 = r4 + step, r6 = r5 + step, r7 = r6 + step;
        for (; k + 4 <= kc; k += 4) {
          const o = <usize>k << 2;
          const d = dst + (<usize>(k * NR) << 2);
          let x0 = v128.load(r0 + o), x1 = v128.load(r1 + o), x2 = v128.load(r2 + o), x3 = v128.load(r3 + o);
          let t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
          let t1 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
          let t2 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
          let t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
          v128.store(d, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
          v128.store(d, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 32);
          v128.store(d, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 64);
          v128.store(d, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 96);
          x0 = v128.load(r4 + o); x1 = v128.load(r5 + o); x2 = v128.load(r6 + o); x3 = v128.load(r7 + o);
          t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
          t1 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
          t2 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
          t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
          v128.store(d, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5), 16);
          v128.store(d, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 48);
          v128.store(d, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 80);
          v128.store(d, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 112);
        }
        for (; k < kc; k++) {
          const d = dst + (<usize>(k * NR) << 2);
          const o = <usize>k << 2;
          for (let c = 0; c < NR; c++) store<f32>(d + (<usize>c << 2), load<f32>(base + <usize>c * step + o));
        }
      } else {
        for (let k = 0; k < kc; k++) {
          const d = dst + (<usize>(k * NR) << 2);
          const o = <usize>k << 2;
          let c = 0;
          for (; c < nr; c++) store<f32>(d + (<usize>c << 2), load<f32>(base + <usize>c * step + o));
          for (; c < NR; c++) store<f32>(d + (<usize>c << 2), 0);
        }
      }
    }
  }
}

/**
 * The rows m0..m1 and columns n0..n1 of C = beta*C + op(A)·op(B). One thread's share; ws is this
 * thread's private workspace of gemmWorkspaceBytes() bytes. Pointers are byte addresses, leading
 * dimensions in elements.
 */
export function gemm(tA: i32, tB: i32, M: i32, N: i32, K: i32, A: usize, lda: i32, B: usize, ldb: i32,
  beta: i32, C: usize, ldc: i32, m0: i32, m1: i32, n0: i32, n1: i32, ws: usize): void {
  gemmImpl(tA, tB, M, N, K, A, lda, B, ldb, beta, C, ldc, m0, m1, n0, n1, ws, 0, 0, 0, 0);
}

/**
 * gemm where either operand may come pre-packed: Apk by packAPart (all rows, m0 a multiple of MR),
 * Bpk by packBPart/packBFull (n0 a multiple of NR); 0 = pack on the fly from A / B.
 */
export function gemmX(tA: i32, tB: i32, M: i32, N: i32, K: i32, A: usize, lda: i32, Apk: usize,
  B: usize, ldb: i32, Bpk: usize, beta: i32, C: usize, ldc: i32, m0: i32, m1: i32, n0: i32, n1: i32, ws: usize): void {
  gemmImpl(tA, tB, M, N, K, A, lda, B, ldb, beta, C, ldc, m0, m1, n0, n1, ws,
    Bpk, ((N + NR - 1) / NR) * NR, Apk, ((M + MR - 1) / MR) * MR);
}

/** Bytes of a pre-packed op(A) [M, K]. */
export function packedABytes(M: i32, K: i32): i32 {
  return ((M + MR - 1) / MR) * MR * K * 4;
}

/** Pack rows i0..i1 of op(A) [M, K] (i0 a multiple of MR) into the shared layout gemmX reads. */
export function packAPart(tA: i32, M: i32, K: i32, A: usize, lda: i32, i0: i32, i1: i32, dst: usize): void {
  const Mpad = ((M + MR - 1) / MR) * MR;
  for (let pc = 0; pc < K; pc += KC) {
    const kc = min(KC, K - pc);
    packA(tA, A, lda, i0, i1 - i0, pc, kc, dst + (<usize>(pc * Mpad + i0 * kc) << 2));
  }
}

/** Pack columns j0..j1 of op(B) [K, N] (j0 a multiple of NR) into the layout of packBFull. */
export function packBPart(tB: i32, K: i32, N: i32, B: usize, ldb: i32, j0: i32, j1: i32, dst: usize): void {
  const Npad = ((N + NR - 1) / NR) * NR;
  for (let pc = 0; pc < K; pc += KC) {
    const kc = min(KC, K - pc);
    packB(tB, B, ldb, pc, kc, j0, j1 - j0, dst + (<usize>(pc * Npad + j0 * kc) << 2));
  }
}

/** Bytes of a pre-packed op(B) [K, N] (see packBFull). */
export function packedBytes(K: i32, N: i32): i32 {
  return ((N + NR - 1) / NR) * NR * K * 4;
}

/**
 * Pack all of op(B) [K, N] once (a weight matrix used by many multiplies): KC-row blocks, each
 * holding its NR-column panels; block pc starts at element pc*Npad, panel j at +j*kc.
 */
export function packBFull(tB: i32, K: i32, N: i32, B: usize, ldb: i32, dst: usize): void {
  const Npad = ((N + NR - 1) / NR) * NR;
  for (let pc = 0; pc < K; pc += KC) {
    const kc = min(KC, K - pc);
    packB(tB, B, ldb, pc, kc, 0, N, dst + (<usize>(pc * Npad) << 2));
  }
}

/** gemm with op(B) pre-packed by packBFull (n0 must be a multiple of NR). */
export function gemmPacked(tA: i32, M: i32, N: i32, K: i32, A: usize, lda: i32, Bpk: usize,
  beta: i32, C: usize, ldc: i32, m0: i32, m1: i32, n0: i32, n1: i32, ws: usize): void {
  gemmImpl(tA, 0, M, N, K, A, lda, 0, 0, beta, C, ldc, m0, m1, n0, n1, ws, Bpk, ((N + NR - 1) / NR) * NR, 0, 0);
}

function gemmImpl(tA: i32, tB: i32, M: i32, N: i32, K: i32, A: usize, lda: i32, B: usize, ldb: i32,
  beta: i32, C: usize, ldc: i32, m0: i32, m1: i32, n0: i32, n1: i32, ws: usize, Bpk: usize, Npad: i32,
  Apk: usize, Mpad: i32): void {
  if (m1 <= m0 || n1 <= n0) return;
  if (K <= 0) {
    if (beta == 0) {
      for (let i = m0; i < m1; i++) memory.fill(at(C, i * ldc + n0), 0, <usize>(n1 - n0) << 2);
    }
    return;
  }
  ws = (ws + 15) & ~15;
  const Ap = ws;
  const Bp = Ap + (<usize>(MC * KC) << 2);
  const T = Bp + (<usize>(KC * NC) << 2);
  const ldcb = <usize>ldc << 2;
  for (let jc = n0; jc < n1; jc += NC) {
    const nc = min(NC, n1 - jc);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = min(KC, K - pc);
      const first = pc == 0 && beta == 0;
      let Bb = Bp;
      if (Bpk) Bb = Bpk + (<usize>(pc * Npad + jc * kc) << 2);
      else packB(tB, B, ldb, pc, kc, jc, nc, Bp);
      for (let ic = m0; ic < m1; ic += MC) {
        const mc = min(MC, m1 - ic);
        let Aa = Ap;
        if (Apk) Aa = Apk + (<usize>(pc * Mpad + ic * kc) << 2);
        else packA(tA, A, lda, ic, mc, pc, kc, Ap);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const bp = Bb + (<usize>(jr * kc) << 2);
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = min(MR, mc - ir);
            const ap = Aa + (<usize>(ir * kc) << 2);
            const cp = at(C, (ic + ir) * ldc + jc + jr);
            if (mr == MR && nr == NR) {
              kernel(kc, ap, bp, cp, ldcb, first);
            } else {
              kernel(kc, ap, bp, T, NR * 4, true);
              for (let r = 0; r < mr; r++) {
                const crow = cp + <usize>r * ldcb;
                const trow = T + (<usize>(r * NR) << 2);
                if (first) {
                  for (let c = 0; c < nr; c++) store<f32>(crow + (<usize>c << 2), load<f32>(trow + (<usize>c << 2)));
                } else {
                  for (let c = 0; c < nr; c++) {
                    const q = crow + (<usize>c << 2);
                    store<f32>(q, load<f32>(q) + load<f32>(trow + (<usize>c << 2)));
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}

/**
 * Small-M multiply without packing, for the rows m0..m1 and columns n0..n1 (batch-1 sampling, tiny
 * batches). Only for !tA. transB: dot products along rows of B; else rows of C accumulate a*B[k,:].
 */
export function gemmSmall(tB: i32, K: i32, A: usize, lda: i32, B: usize, ldb: i32,
  beta: i32, C: usize, ldc: i32, m0: i32, m1: i32, n0: i32, n1: i32): void {
  const ldbb = <usize>ldb << 2;
  for (let i = m0; i < m1; i++) {
    const a = at(A, i * lda);
    const crow = at(C, i * ldc);
    if (tB) {
      let j = n0;
      for (; j + 4 <= n1; j += 4) {
        const b0 = at(B, j * ldb), b1 = b0 + ldbb, b2 = b1 + ldbb, b3 = b2 + ldbb;
        let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
        let k = 0;
        for (; k + 4 <= K; k += 4) {
          const o = <usize>k << 2;
          const av = v128.load(a + o);
          s0 = fma(av, v128.load(b0 + o), s0);
          s1 = fma(av, v128.load(b1 + o), s1);
          s2 = fma(av, v128.load(b2 + o), s2);
          s3 = fma(av, v128.load(b3 + o), s3);
        }
        // horizontal sums: transpose-add
        const u0 = f32x4.add(v128.shuffle<f32>(s0, s1, 0, 4, 1, 5), v128.shuffle<f32>(s0, s1, 2, 6, 3, 7)); // s0a s1a s0b s1b
        const u1 = f32x4.add(v128.shuffle<f32>(s2, s3, 0, 4, 1, 5), v128.shuffle<f32>(s2, s3, 2, 6, 3, 7));
        let sum = f32x4.add(v128.shuffle<f32>(u0, u1, 0, 1, 4, 5), v128.shuffle<f32>(u0, u1, 2, 3, 6, 7));
        for (; k < K; k++) {
          const o = <usize>k << 2;
          const av = f32x4.splat(load<f32>(a + o));
          let bv = f32x4.splat(0);
          bv = f32x4.replace_lane(bv, 0, load<f32>(b0 + o));
          bv = f32x4.replace_lane(bv, 1, load<f32>(b1 + o));
          bv = f32x4.replace_lane(bv, 2, load<f32>(b2 + o));
          bv = f32x4.replace_lane(bv, 3, load<f32>(b3 + o));
          sum = fma(av, bv, sum);
        }
        const q = crow + (<usize>j << 2);
        v128.store(q, beta ? f32x4.add(v128.load(q), sum) : sum);
      }
      for (; j < n1; j++) {
        const b0 = at(B, j * ldb);
        let s = f32x4.splat(0);
        let k = 0;
        for (; k + 4 <= K; k += 4) {
          const o = <usize>k << 2;
          s = fma(v128.load(a + o), v128.load(b0 + o), s);
        }
        let t = (f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 2)) + (f32x4.extract_lane(s, 1) + f32x4.extract_lane(s, 3));
        for (; k < K; k++) t += load<f32>(a + (<usize>k << 2)) * load<f32>(b0 + (<usize>k << 2));
        const q = crow + (<usize>j << 2);
        store<f32>(q, beta ? load<f32>(q) + t : t);
      }
    } else {
      // C[i, j0..j0+32] in 8 registers, loop over k.
      let j = n0;
      for (; j + 32 <= n1; j += 32) {
        const q = crow + (<usize>j << 2);
        let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
        let c4 = f32x4.splat(0), c5 = f32x4.splat(0), c6 = f32x4.splat(0), c7 = f32x4.splat(0);
        let bp = at(B, j);
        for (let k = 0; k < K; k++) {
          const av = v128.load32_splat(a + (<usize>k << 2));
          c0 = fma(av, v128.load(bp), c0); c1 = fma(av, v128.load(bp, 16), c1);
          c2 = fma(av, v128.load(bp, 32), c2); c3 = fma(av, v128.load(bp, 48), c3);
          c4 = fma(av, v128.load(bp, 64), c4); c5 = fma(av, v128.load(bp, 80), c5);
          c6 = fma(av, v128.load(bp, 96), c6); c7 = fma(av, v128.load(bp, 112), c7);
          bp += ldbb;
        }
        if (beta) {
          c0 = f32x4.add(v128.load(q), c0); c1 = f32x4.add(v128.load(q, 16), c1);
          c2 = f32x4.add(v128.load(q, 32), c2); c3 = f32x4.add(v128.load(q, 48), c3);
          c4 = f32x4.add(v128.load(q, 64), c4); c5 = f32x4.add(v128.load(q, 80), c5);
          c6 = f32x4.add(v128.load(q, 96), c6); c7 = f32x4.add(v128.load(q, 112), c7);
        }
        v128.store(q, c0); v128.store(q, c1, 16); v128.store(q, c2, 32); v128.store(q, c3, 48);
        v128.store(q, c4, 64); v128.store(q, c5, 80); v128.store(q, c6, 96); v128.store(q, c7, 112);
      }
      for (; j + 4 <= n1; j += 4) {
        const q = crow + (<usize>j << 2);
        let c0 = f32x4.splat(0);
        let bp = at(B, j);
        for (let k = 0; k < K; k++) {
          c0 = fma(v128.load32_splat(a + (<usize>k << 2)), v128.load(bp), c0);
          bp += ldbb;
        }
        v128.store(q, beta ? f32x4.add(v128.load(q), c0) : c0);
      }
      for (; j < n1; j++) {
        const q = crow + (<usize>j << 2);
        let t: f32 = 0;
        let bp = at(B, j);
        for (let k = 0; k < K; k++) {
          t += load<f32>(a + (<usize>k << 2)) * load<f32>(bp);
          bp += ldbb;
        }
        store<f32>(q, beta ? load<f32>(q) + t : t);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Vector math: expf, expm1f, tanhf, sigmoid on f32x4, about 1-3 ulp.
// ---------------------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline function vexp(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, f32x4.splat(-87.33654)), f32x4.splat(88.37626));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  const z = f32x4.mul(r, r);
  let p = f32x4.splat(1.9875691500e-4);
  p = fma(p, r, f32x4.splat(1.3981999507e-3));
  p = fma(p, r, f32x4.splat(8.3334519073e-3));
  p = fma(p, r, f32x4.splat(4.1665795894e-2));
  p = fma(p, r, f32x4.splat(1.6666665459e-1));
  p = fma(p, r, f32x4.splat(5.0000001201e-1));
  p = f32x4.add(fma(p, z, r), f32x4.splat(1));
  const s = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(p, s);
}

/** expm1 for 0 <= x <= 18. */
// @ts-ignore: decorator
@inline function vexpm1pos(x: v128): v128 {
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.0 / 5040.0);
  p = fma(p, r, f32x4.splat(1.0 / 720.0));
  p = fma(p, r, f32x4.splat(1.0 / 120.0));
  p = fma(p, r, f32x4.splat(1.0 / 24.0));
  p = fma(p, r, f32x4.splat(1.0 / 6.0));
  p = fma(p, r, f32x4.splat(0.5));
  p = fma(f32x4.mul(p, r), r, r); // expm1(r)
  const s = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return fma(s, p, f32x4.sub(s, f32x4.splat(1)));
}

// @ts-ignore: decorator
@inline function vtanh(x: v128): v128 {
  const ax = f32x4.min(f32x4.abs(x), f32x4.splat(9));
  const em = vexpm1pos(f32x4.add(ax, ax));
  const t = f32x4.div(em, f32x4.add(em, f32x4.splat(2)));
  return v128.or(t, v128.and(x, i32x4.splat(0x80000000)));
}

// @ts-ignore: decorator
@inline function vsigmoid(x: v128): v128 {
  return f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), vexp(f32x4.neg(x))));
}

// Loads/stores of either 4 lanes or 1 lane (tails), selected at compile time after inlining.
// @ts-ignore: decorator
@inline function ld(p: usize, one: bool): v128 { return one ? v128.load32_zero(p) : v128.load(p); }
// @ts-ignore: decorator
@inline function st(p: usize, v: v128, one: bool): void { if (one) v128.store32_lane(p, v, 0); else v128.store(p, v); }

export function vecExp(n: i32, x: usize, y: usize): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(y, i), vexp(v128.load(at(x, i))));
  for (; i < n; i++) st(at(y, i), vexp(ld(at(x, i), true)), true);
}
export function vecTanh(n: i32, x: usize, y: usize): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(y, i), vtanh(v128.load(at(x, i))));
  for (; i < n; i++) st(at(y, i), vtanh(ld(at(x, i), true)), true);
}
export function vecSigmoid(n: i32, x: usize, y: usize): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(y, i), vsigmoid(v128.load(at(x, i))));
  for (; i < n; i++) st(at(y, i), vsigmoid(ld(at(x, i), true)), true);
}

// ---------------------------------------------------------------------------------------------
// Cell kernels (see src/backend/js.ts for the specification).
// ---------------------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline function lstmFwd(g: usize, Hb: usize, cp: usize, c: usize, h: usize, one: bool): void {
  const ig = vsigmoid(ld(g, one));
  const fg = vsigmoid(ld(g + Hb, one));
  const gg = vtanh(ld(g + 2 * Hb, one));
  const og = vsigmoid(ld(g + 3 * Hb, one));
  st(g, ig, one); st(g + Hb, fg, one); st(g + 2 * Hb, gg, one); st(g + 3 * Hb, og, one);
  const cv = f32x4.add(f32x4.mul(fg, ld(cp, one)), f32x4.mul(ig, gg));
  st(c, cv, one);
  st(h, f32x4.mul(og, vtanh(cv)), one);
}

export function lstmCellForward(B: i32, H: i32, gates: usize, cPrev: usize, c: usize, h: usize): void {
  const Hb = <usize>H << 2;
  for (let b = 0; b < B; b++) {
    const g = gates + 4 * Hb * b, cp = cPrev + Hb * b, cc = c + Hb * b, hh = h + Hb * b;
    let j = 0;
    for (; j + 4 <= H; j += 4) { const o = <usize>j << 2; lstmFwd(g + o, Hb, cp + o, cc + o, hh + o, false); }
    for (; j < H; j++) { const o = <usize>j << 2; lstmFwd(g + o, Hb, cp + o, cc + o, hh + o, true); }
  }
}

// @ts-ignore: decorator
@inline function lstmBwd(g: usize, Hb: usize, cp: usize, c: usize, dh: usize, dc: usize, dg: usize, one: bool): void {
  const ig = ld(g, one), fg = ld(g + Hb, one), gg = ld(g + 2 * Hb, one), og = ld(g + 3 * Hb, one);
  const one4 = f32x4.splat(1);
  const tc = vtanh(ld(c, one));
  const dhv = ld(dh, one);
  const dcv = f32x4.add(ld(dc, one), f32x4.mul(f32x4.mul(dhv, og), f32x4.sub(one4, f32x4.mul(tc, tc))));
  st(dg, f32x4.mul(f32x4.mul(f32x4.mul(dcv, gg), ig), f32x4.sub(one4, ig)), one);
  st(dg + Hb, f32x4.mul(f32x4.mul(f32x4.mul(dcv, ld(cp, one)), fg), f32x4.sub(one4, fg)), one);
  st(dg + 2 * Hb, f32x4.mul(f32x4.mul(dcv, ig), f32x4.sub(one4, f32x4.mul(gg, gg))), one);
  st(dg + 3 * Hb, f32x4.mul(f32x4.mul(f32x4.mul(dhv, tc), og), f32x4.sub(one4, og)), one);
  st(dc, f32x4.mul(dcv, fg), one);
}

export function lstmCellBackward(B: i32, H: i32, gates: usize, cPrev: usize, c: usize, dh: usize, dc: usize,
  dgates: usize): void {
  const Hb = <usize>H << 2;
  for (let b = 0; b < B; b++) {
    const g = gates + 4 * Hb * b, dg = dgates + 4 * Hb * b, s = Hb * b;
    let j = 0;
    for (; j + 4 <= H; j += 4) {
      const o = <usize>j << 2;
      lstmBwd(g + o, Hb, cPrev + s + o, c + s + o, dh + s + o, dc + s + o, dg + o, false);
    }
    for (; j < H; j++) {
      const o = <usize>j << 2;
      lstmBwd(g + o, Hb, cPrev + s + o, c + s + o, dh + s + o, dc + s + o, dg + o, true);
    }
  }
}

// @ts-ignore: decorator
@inline function gruFwd(x: usize, q: usize, Hb: usize, hp: usize, a: usize, h: usize, one: bool): void {
  const r = vsigmoid(f32x4.add(ld(x, one), ld(q, one)));
  const z = vsigmoid(f32x4.add(ld(x + Hb, one), ld(q + Hb, one)));
  const n = vtanh(f32x4.add(ld(x + 2 * Hb, one), f32x4.mul(r, ld(q + 2 * Hb, one))));
  st(a, r, one); st(a + Hb, z, one); st(a + 2 * Hb, n, one);
  st(h, f32x4.add(f32x4.mul(f32x4.sub(f32x4.splat(1), z), n), f32x4.mul(z, ld(hp, one))), one);
}

export function gruCellForward(B: i32, H: i32, xp: usize, hp: usize, hPrev: usize, act: usize, h: usize): void {
  const Hb = <usize>H << 2;
  for (let b = 0; b < B; b++) {
    const x = xp + 3 * Hb * b, q = hp + 3 * Hb * b, a = act + 3 * Hb * b, s = Hb * b;
    let j = 0;
    for (; j + 4 <= H; j += 4) { const o = <usize>j << 2; gruFwd(x + o, q + o, Hb, hPrev + s + o, a + o, h + s + o, false); }
    for (; j < H; j++) { const o = <usize>j << 2; gruFwd(x + o, q + o, Hb, hPrev + s + o, a + o, h + s + o, true); }
  }
}

// @ts-ignore: decorator
@inline function gruBwd(a: usize, q: usize, Hb: usize, hp: usize, dh: usize, dx: usize, dq: usize, dhp: usize, one: bool): void {
  const one4 = f32x4.splat(1);
  const r = ld(a, one), z = ld(a + Hb, one), n = ld(a + 2 * Hb, one);
  const d = ld(dh, one);
  const dn = f32x4.mul(f32x4.mul(d, f32x4.sub(one4, z)), f32x4.sub(one4, f32x4.mul(n, n)));
  const dz = f32x4.mul(f32x4.mul(f32x4.mul(d, f32x4.sub(ld(hp, one), n)), z), f32x4.sub(one4, z));
  const dr = f32x4.mul(f32x4.mul(f32x4.mul(dn, ld(q + 2 * Hb, one)), r), f32x4.sub(one4, r));
  st(dx, dr, one); st(dx + Hb, dz, one); st(dx + 2 * Hb, dn, one);
  st(dq, dr, one); st(dq + Hb, dz, one); st(dq + 2 * Hb, f32x4.mul(dn, r), one);
  st(dhp, f32x4.mul(d, z), one);
}

export function gruCellBackward(B: i32, H: i32, act: usize, hp: usize, hPrev: usize, dh: usize,
  dxp: usize, dhp: usize, dhPrev: usize): void {
  const Hb = <usize>H << 2;
  for (let b = 0; b < B; b++) {
    const a = act + 3 * Hb * b, q = hp + 3 * Hb * b, dx = dxp + 3 * Hb * b, dq = dhp + 3 * Hb * b, s = Hb * b;
    let j = 0;
    for (; j + 4 <= H; j += 4) {
      const o = <usize>j << 2;
      gruBwd(a + o, q + o, Hb, hPrev + s + o, dh + s + o, dx + o, dq + o, dhPrev + s + o, false);
    }
    for (; j < H; j++) {
      const o = <usize>j << 2;
      gruBwd(a + o, q + o, Hb, hPrev + s + o, dh + s + o, dx + o, dq + o, dhPrev + s + o, true);
    }
  }
}

/** act 0 = tanh, 1 = relu; in place on n elements. */
export function rnnCellForward(act: i32, n: i32, a: usize): void {
  if (act == 0) vecTanh(n, a, a);
  else {
    let i = 0;
    const z = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) { const p = at(a, i); v128.store(p, relu4(v128.load(p), z)); }
    for (; i < n; i++) { const p = at(a, i); const v = load<f32>(p); store<f32>(p, v > 0 ? v : 0); }
  }
}
// @ts-ignore: decorator
@inline function relu4(v: v128, z: v128): v128 { return v128.and(v, f32x4.gt(v, z)); }

export function rnnCellBackward(act: i32, n: i32, h: usize, dh: usize, da: usize): void {
  let i = 0;
  if (act == 0) {
    const one4 = f32x4.splat(1);
    for (; i + 4 <= n; i += 4) {
      const v = v128.load(at(h, i));
      v128.store(at(da, i), f32x4.mul(v128.load(at(dh, i)), f32x4.sub(one4, f32x4.mul(v, v))));
    }
    for (; i < n; i++) { const v = load<f32>(at(h, i)); store<f32>(at(da, i), load<f32>(at(dh, i)) * (1 - v * v)); }
  } else {
    const z = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      v128.store(at(da, i), v128.and(v128.load(at(dh, i)), f32x4.gt(v128.load(at(h, i)), z)));
    }
    for (; i < n; i++) store<f32>(at(da, i), load<f32>(at(h, i)) > 0 ? load<f32>(at(dh, i)) : 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Around the cells.
// ---------------------------------------------------------------------------------------------

export function addRowVector(rows: i32, n: i32, X: usize, b: usize, Y: usize): void {
  for (let r = 0; r < rows; r++) {
    const x = X + (<usize>(r * n) << 2), y = Y + (<usize>(r * n) << 2);
    let j = 0;
    for (; j + 4 <= n; j += 4) v128.store(at(y, j), f32x4.add(v128.load(at(x, j)), v128.load(at(b, j))));
    for (; j < n; j++) store<f32>(at(y, j), load<f32>(at(x, j)) + load<f32>(at(b, j)));
  }
}

export function sumRows(rows: i32, n: i32, dY: usize, db: usize): void {
  // Columns in blocks of 32 kept in registers; rows added in order (bitwise identical to the reference).
  let j = 0;
  for (; j + 32 <= n; j += 32) {
    const q = at(db, j);
    let c0 = v128.load(q), c1 = v128.load(q, 16), c2 = v128.load(q, 32), c3 = v128.load(q, 48);
    let c4 = v128.load(q, 64), c5 = v128.load(q, 80), c6 = v128.load(q, 96), c7 = v128.load(q, 112);
    let p = at(dY, j);
    const step = <usize>n << 2;
    for (let r = 0; r < rows; r++) {
      c0 = f32x4.add(c0, v128.load(p)); c1 = f32x4.add(c1, v128.load(p, 16));
      c2 = f32x4.add(c2, v128.load(p, 32)); c3 = f32x4.add(c3, v128.load(p, 48));
      c4 = f32x4.add(c4, v128.load(p, 64)); c5 = f32x4.add(c5, v128.load(p, 80));
      c6 = f32x4.add(c6, v128.load(p, 96)); c7 = f32x4.add(c7, v128.load(p, 112));
      p += step;
    }
    v128.store(q, c0); v128.store(q, c1, 16); v128.store(q, c2, 32); v128.store(q, c3, 48);
    v128.store(q, c4, 64); v128.store(q, c5, 80); v128.store(q, c6, 96); v128.store(q, c7, 112);
  }
  for (let r = 0; r < rows; r++) {
    const y = dY + (<usize>(r * n) << 2);
    let jj = j;
    for (; jj + 4 <= n; jj += 4) { const q = at(db, jj); v128.store(q, f32x4.add(v128.load(q), v128.load(at(y, jj)))); }
    for (; jj < n; jj++) { const q = at(db, jj); store<f32>(q, load<f32>(q) + load<f32>(at(y, jj))); }
  }
}

export function embeddingForward(n: i32, dim: i32, ids: usize, table: usize, out: usize): void {
  const rowb = <usize>dim << 2;
  for (let r = 0; r < n; r++) {
    const id = load<i32>(ids + (<usize>r << 2));
    memory.copy(out + <usize>r * rowb, table + <usize>id * rowb, rowb);
  }
}

export function embeddingBackward(n: i32, dim: i32, ids: usize, dOut: usize, dTable: usize): void {
  const rowb = <usize>dim << 2;
  for (let r = 0; r < n; r++) {
    const id = load<i32>(ids + (<usize>r << 2));
    addTo(dim, dOut + <usize>r * rowb, dTable + <usize>id * rowb);
  }
}

/** Returns the summed loss (f64); see js.ts. d may be 0 (no gradient). */
export function softmaxCrossEntropy(n: i32, V: i32, logits: usize, targets: usize, d: usize, scale: f64): f64 {
  let loss: f64 = 0;
  const rowb = <usize>V << 2;
  for (let r = 0; r < n; r++) {
    const l = logits + <usize>r * rowb;
    const t = load<i32>(targets + (<usize>r << 2));
    const dr = d + <usize>r * rowb;
    if (t < 0) {
      if (d) memory.fill(dr, 0, rowb);
      continue;
    }
    // max
    let mv = f32x4.splat(-Infinity);
    let j = 0;
    for (; j + 4 <= V; j += 4) mv = f32x4.max(mv, v128.load(at(l, j)));
    let mx = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
    for (; j < V; j++) mx = max(mx, load<f32>(at(l, j)));
    const lt = load<f32>(at(l, t));
    const mxv = f32x4.splat(mx);
    // sum of exp in double; exp values kept in d when given
    let sv = f64x2.splat(0);
    j = 0;
    for (; j + 4 <= V; j += 4) {
      const e = vexp(f32x4.sub(v128.load(at(l, j)), mxv));
      if (d) v128.store(at(dr, j), e);
      sv = f64x2.add(sv, f64x2.add(f64x2.promote_low_f32x4(e), f64x2.promote_low_f32x4(v128.shuffle<f32>(e, e, 2, 3, 0, 1))));
    }
    let sum = f64x2.extract_lane(sv, 0) + f64x2.extract_lane(sv, 1);
    for (; j < V; j++) {
      const e = vexp(f32x4.sub(ld(at(l, j), true), mxv));
      if (d) st(at(dr, j), e, true);
      sum += <f64>f32x4.extract_lane(e, 0);
    }
    const lse = <f64>mx + Math.log(sum);
    loss += lse - <f64>lt;
    if (d) {
      const f = <f32>(scale / sum);
      const fv = f32x4.splat(f);
      j = 0;
      for (; j + 4 <= V; j += 4) { const q = at(dr, j); v128.store(q, f32x4.mul(v128.load(q), fv)); }
      for (; j < V; j++) { const q = at(dr, j); store<f32>(q, load<f32>(q) * f); }
      const q = at(dr, t);
      store<f32>(q, <f32>(<f64>load<f32>(q) - scale));
    }
  }
  return loss;
}

export function mul(n: i32, a: usize, b: usize, y: usize): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(y, i), f32x4.mul(v128.load(at(a, i)), v128.load(at(b, i))));
  for (; i < n; i++) store<f32>(at(y, i), load<f32>(at(a, i)) * load<f32>(at(b, i)));
}

export function addTo(n: i32, x: usize, y: usize): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) { const q = at(y, i); v128.store(q, f32x4.add(v128.load(q), v128.load(at(x, i)))); }
  for (; i < n; i++) { const q = at(y, i); store<f32>(q, load<f32>(q) + load<f32>(at(x, i))); }
}

// f32 <-> f64x2 helpers: two floats at p as doubles, and back.
// @ts-ignore: decorator
@inline function ld2(p: usize): v128 { return f64x2.promote_low_f32x4(v128.load64_zero(p)); }
// @ts-ignore: decorator
@inline function st2(p: usize, v: v128): void { v128.store64_lane(p, f32x4.demote_f64x2_zero(v), 0); }

/** x *= s, computed in double like the reference. */
export function scale(n: i32, s: f64, x: usize): void {
  const sv = f64x2.splat(s);
  let i = 0;
  for (; i + 2 <= n; i += 2) { const q = at(x, i); st2(q, f64x2.mul(ld2(q), sv)); }
  for (; i < n; i++) { const q = at(x, i); store<f32>(q, <f32>(<f64>load<f32>(q) * s)); }
}

export function sumSquares(n: i32, x: usize): f64 {
  let a = f64x2.splat(0), b = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(at(x, i));
    const lo = f64x2.promote_low_f32x4(v), hi = f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1));
    a = f64x2.add(a, f64x2.mul(lo, lo));
    b = f64x2.add(b, f64x2.mul(hi, hi));
  }
  a = f64x2.add(a, b);
  let s = f64x2.extract_lane(a, 0) + f64x2.extract_lane(a, 1);
  for (; i < n; i++) { const v = <f64>load<f32>(at(x, i)); s += v * v; }
  return s;
}

export function fill(n: i32, v: f32, x: usize): void {
  const vv = f32x4.splat(v);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(x, i), vv);
  for (; i < n; i++) store<f32>(at(x, i), v);
}

export function copy(n: i32, x: usize, y: usize): void {
  memory.copy(y, x, <usize>n << 2);
}

/** Adam in double precision, exactly as the reference computes it. */
export function adam(n: i32, p: usize, g: usize, m: usize, v: usize, b1: f64, b2: f64, eps: f64,
  wd: f64, stepSize: f64, sqrtBc2: f64): void {
  const B1 = f64x2.splat(b1), B2 = f64x2.splat(b2), C1 = f64x2.splat(1 - b1), C2 = f64x2.splat(1 - b2);
  const EPS = f64x2.splat(eps), WD = f64x2.splat(wd), SS = f64x2.splat(stepSize), SB = f64x2.splat(sqrtBc2);
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const pp = at(p, i), mp = at(m, i), vp = at(v, i);
    const pv = ld2(pp);
    const gi = f64x2.add(ld2(at(g, i)), f64x2.mul(WD, pv));
    const mi = f64x2.add(f64x2.mul(B1, ld2(mp)), f64x2.mul(C1, gi));
    const vi = f64x2.add(f64x2.mul(B2, ld2(vp)), f64x2.mul(f64x2.mul(C2, gi), gi));
    st2(mp, mi); st2(vp, vi);
    const upd = f64x2.div(f64x2.mul(SS, mi), f64x2.add(f64x2.div(f64x2.sqrt(vi), SB), EPS));
    st2(pp, f64x2.sub(pv, upd));
  }
  for (; i < n; i++) {
    const pp = at(p, i), mp = at(m, i), vp = at(v, i);
    const pv = <f64>load<f32>(pp);
    const gi = <f64>load<f32>(at(g, i)) + wd * pv;
    const mi = b1 * <f64>load<f32>(mp) + (1 - b1) * gi;
    const vi = b2 * <f64>load<f32>(vp) + (1 - b2) * gi * gi;
    store<f32>(mp, <f32>mi); store<f32>(vp, <f32>vi);
    store<f32>(pp, <f32>(pv - stepSize * mi / (Math.sqrt(vi) / sqrtBc2 + eps)));
  }
}

/** SGD (PyTorch), in double like the reference; mom may be 0. */
export function sgd(n: i32, p: usize, g: usize, mom: usize, lr: f64, momentum: f64, wd: f64): void {
  const useMom = mom != 0 && momentum > 0;
  for (let i = 0; i < n; i++) {
    const pp = at(p, i);
    const pv = <f64>load<f32>(pp);
    let d = <f64>load<f32>(at(g, i)) + wd * pv;
    if (useMom) {
      const q = at(mom, i);
      const mv = <f32>(momentum * <f64>load<f32>(q) + d);
      store<f32>(q, mv);
      d = <f64>mv;
    }
    store<f32>(pp, <f32>(pv - lr * d));
  }
}

/** Y[r*ldy + j] = X[r*ldx + j] for r < rows, j < n (strides in elements). */
export function copy2d(rows: i32, n: i32, X: usize, ldx: i32, Y: usize, ldy: i32): void {
  const nb = <usize>n << 2;
  for (let r = 0; r < rows; r++) memory.copy(at(Y, r * ldy), at(X, r * ldx), nb);
}

/**
 * softmaxCrossEntropy over blocks of `blockRows` rows: rows [b0*blockRows, min(n, b1*blockRows)),
 * the loss of block b stored as f64 at lossOut[b]. Summing the blocks in order gives the same loss
 * whichever thread computed which block.
 */
export function softmaxBlocks(n: i32, V: i32, logits: usize, targets: usize, d: usize, scale: f64,
  blockRows: i32, b0: i32, b1: i32, lossOut: usize): void {
  const rowb = <usize>V << 2;
  for (let b = b0; b < b1; b++) {
    const r0 = b * blockRows, r1 = min(n, r0 + blockRows);
    if (r1 <= r0) break;
    const off = <usize>r0 * rowb;
    const loss = softmaxCrossEntropy(r1 - r0, V, logits + off, targets + (<usize>r0 << 2), d ? d + off : 0, scale);
    store<f64>(lossOut + (<usize>b << 3), loss);
  }
}

// @ts-ignore: decorator
@inline function lstmOut(o: usize, cn: usize, h: usize, one: bool): void {
  st(h, f32x4.mul(ld(o, one), vtanh(ld(cn, one))), one);
}

/** LSTM with a normalized cell state: h = o * tanh(cn), o the activated output gate of gates [B, 4H]. */
export function lstmOutput(B: i32, H: i32, gates: usize, cn: usize, h: usize): void {
  const Hb = <usize>H << 2;
  for (let b = 0; b < B; b++) {
    const o = gates + 4 * Hb * b + 3 * Hb, c = cn + Hb * b, hh = h + Hb * b;
    let j = 0;
    for (; j + 4 <= H; j += 4) { const q = <usize>j << 2; lstmOut(o + q, c + q, hh + q, false); }
    for (; j < H; j++) { const q = <usize>j << 2; lstmOut(o + q, c + q, hh + q, true); }
  }
}

// @ts-ignore: decorator
@inline function lstmOutBwd(o: usize, cn: usize, dh: usize, dcn: usize, dO: usize, one: bool): void {
  const one4 = f32x4.splat(1);
  const og = ld(o, one), tc = vtanh(ld(cn, one)), d = ld(dh, one);
  st(dcn, f32x4.mul(f32x4.mul(d, og), f32x4.sub(one4, f32x4.mul(tc, tc))), one);
  st(dO, f32x4.mul(f32x4.mul(f32x4.mul(d, tc), og), f32x4.sub(one4, og)), one);
}

/** Backward of lstmOutput: dcn = dh o (1 - tanh^2 cn), dO = dh tanh(cn) o (1 - o). */
export function lstmOutputBackward(B: i32, H: i32, gates: usize, cn: usize, dh: usize, dcn: usize, dO: usize): void {
  const Hb = <usize>H << 2;
  for (let b = 0; b < B; b++) {
    const o = gates + 4 * Hb * b + 3 * Hb, s = Hb * b;
    let j = 0;
    for (; j + 4 <= H; j += 4) { const q = <usize>j << 2; lstmOutBwd(o + q, cn + s + q, dh + s + q, dcn + s + q, dO + s + q, false); }
    for (; j < H; j++) { const q = <usize>j << 2; lstmOutBwd(o + q, cn + s + q, dh + s + q, dcn + s + q, dO + s + q, true); }
  }
}

// ---------------------------------------------------------------------------------------------
// Normalization (layer norm, batch norm), in double precision like the reference (js.ts). Column
// statistics accumulate row by row into per-column f64 scratch, so every column sums in the
// reference's order.
// ---------------------------------------------------------------------------------------------

/** Sum of the f32 x[0..n) in double (two interleaved partial sums). */
function sumF64(n: i32, x: usize): f64 {
  let a = f64x2.splat(0);
  let j = 0;
  for (; j + 2 <= n; j += 2) a = f64x2.add(a, ld2(at(x, j)));
  let s = f64x2.extract_lane(a, 0) + f64x2.extract_lane(a, 1);
  for (; j < n; j++) s += <f64>load<f32>(at(x, j));
  return s;
}

export function layerNormForward(rows: i32, n: i32, X: usize, gamma: usize, beta: usize, Y: usize,
  xhat: usize, rstd: usize, eps: f64): void {
  for (let r = 0; r < rows; r++) {
    const o = <usize>r * (<usize>n << 2);
    const x = X + o, y = Y + o, h = xhat + o;
    const mean = sumF64(n, x) / <f64>n;
    const mv = f64x2.splat(mean);
    let va = f64x2.splat(0);
    let j = 0;
    for (; j + 2 <= n; j += 2) { const d = f64x2.sub(ld2(at(x, j)), mv); va = f64x2.add(va, f64x2.mul(d, d)); }
    let v = f64x2.extract_lane(va, 0) + f64x2.extract_lane(va, 1);
    for (; j < n; j++) { const d = <f64>load<f32>(at(x, j)) - mean; v += d * d; }
    const rs = 1 / Math.sqrt(v / <f64>n + eps);
    store<f32>(rstd + (<usize>r << 2), <f32>rs);
    const rv = f64x2.splat(rs);
    j = 0;
    for (; j + 2 <= n; j += 2) {
      const z = f64x2.mul(f64x2.sub(ld2(at(x, j)), mv), rv);
      st2(at(h, j), z);
      st2(at(y, j), f64x2.add(f64x2.mul(ld2(at(gamma, j)), z), ld2(at(beta, j))));
    }
    for (; j < n; j++) {
      const z = (<f64>load<f32>(at(x, j)) - mean) * rs;
      store<f32>(at(h, j), <f32>z);
      store<f32>(at(y, j), <f32>(<f64>load<f32>(at(gamma, j)) * z + <f64>load<f32>(at(beta, j))));
    }
  }
}

export function layerNormBackward(rows: i32, n: i32, dY: usize, xhat: usize, rstd: usize, gamma: usize,
  dGamma: usize, dBeta: usize, dX: usize): void {
  for (let r = 0; r < rows; r++) {
    const o = <usize>r * (<usize>n << 2);
    const dy = dY + o, h = xhat + o, dx = dX + o;
    const rs = <f64>load<f32>(rstd + (<usize>r << 2));
    let a1 = f64x2.splat(0), a2 = f64x2.splat(0);
    let j = 0;
    for (; j + 2 <= n; j += 2) {
      const d = ld2(at(dy, j)), z = ld2(at(h, j));
      const gy = f64x2.mul(d, ld2(at(gamma, j)));
      a1 = f64x2.add(a1, gy); a2 = f64x2.add(a2, f64x2.mul(gy, z));
      const pg = at(dGamma, j), pb = at(dBeta, j);
      st2(pg, f64x2.add(ld2(pg), f64x2.mul(d, z)));
      st2(pb, f64x2.add(ld2(pb), d));
    }
    let m1 = f64x2.extract_lane(a1, 0) + f64x2.extract_lane(a1, 1);
    let m2 = f64x2.extract_lane(a2, 0) + f64x2.extract_lane(a2, 1);
    for (; j < n; j++) {
      const d = <f64>load<f32>(at(dy, j)), z = <f64>load<f32>(at(h, j));
      const gy = d * <f64>load<f32>(at(gamma, j));
      m1 += gy; m2 += gy * z;
      const pg = at(dGamma, j), pb = at(dBeta, j);
      store<f32>(pg, <f32>(<f64>load<f32>(pg) + d * z));
      store<f32>(pb, <f32>(<f64>load<f32>(pb) + d));
    }
    m1 /= <f64>n; m2 /= <f64>n;
    const rv = f64x2.splat(rs), m1v = f64x2.splat(m1), m2v = f64x2.splat(m2);
    j = 0;
    for (; j + 2 <= n; j += 2) {
      const t = f64x2.sub(f64x2.sub(f64x2.mul(ld2(at(dy, j)), ld2(at(gamma, j))), m1v), f64x2.mul(ld2(at(h, j)), m2v));
      st2(at(dx, j), f64x2.mul(rv, t));
    }
    for (; j < n; j++) {
      const t = <f64>load<f32>(at(dy, j)) * <f64>load<f32>(at(gamma, j)) - m1 - <f64>load<f32>(at(h, j)) * m2;
      store<f32>(at(dx, j), <f32>(rs * t));
    }
  }
}

// @ts-ignore: decorator
@inline function rowOn(mask: usize, r: i32): bool { return mask == 0 || load<u8>(mask + <usize>r) != 0; }

/** Per column of X [rows, n]: mean and biased variance over the rows with mask[r] != 0 (mask 0 = all). tmp: 2n f64. */
export function columnStats(rows: i32, n: i32, X: usize, mask: usize, mean: usize, variance: usize, tmp: usize): void {
  let count = 0;
  for (let r = 0; r < rows; r++) if (rowOn(mask, r)) count++;
  if (count == 0) {
    for (let j = 0; j < n; j++) { store<f32>(at(mean, j), 0); store<f32>(at(variance, j), 1); }
    return;
  }
  const acc = tmp, m = tmp + (<usize>n << 3);
  memory.fill(acc, 0, <usize>n << 3);
  for (let r = 0; r < rows; r++) {
    if (!rowOn(mask, r)) continue;
    const x = X + <usize>r * (<usize>n << 2);
    let j = 0;
    for (; j + 2 <= n; j += 2) { const q = acc + (<usize>j << 3); v128.store(q, f64x2.add(v128.load(q), ld2(at(x, j)))); }
    for (; j < n; j++) { const q = acc + (<usize>j << 3); store<f64>(q, load<f64>(q) + <f64>load<f32>(at(x, j))); }
  }
  const c = <f64>count;
  for (let j = 0; j < n; j++) { store<f64>(m + (<usize>j << 3), load<f64>(acc + (<usize>j << 3)) / c); }
  memory.fill(acc, 0, <usize>n << 3);
  for (let r = 0; r < rows; r++) {
    if (!rowOn(mask, r)) continue;
    const x = X + <usize>r * (<usize>n << 2);
    let j = 0;
    for (; j + 2 <= n; j += 2) {
      const q = acc + (<usize>j << 3);
      const d = f64x2.sub(ld2(at(x, j)), v128.load(m + (<usize>j << 3)));
      v128.store(q, f64x2.add(v128.load(q), f64x2.mul(d, d)));
    }
    for (; j < n; j++) {
      const q = acc + (<usize>j << 3);
      const d = <f64>load<f32>(at(x, j)) - load<f64>(m + (<usize>j << 3));
      store<f64>(q, load<f64>(q) + d * d);
    }
  }
  for (let j = 0; j < n; j++) {
    store<f32>(at(mean, j), <f32>load<f64>(m + (<usize>j << 3)));
    store<f32>(at(variance, j), <f32>(load<f64>(acc + (<usize>j << 3)) / c));
  }
}

/** Batch norm with given statistics (see js.ts). tmp: n f64. */
export function normalizeColumns(rows: i32, n: i32, X: usize, mean: usize, variance: usize, eps: f64,
  gamma: usize, beta: usize, Y: usize, xhat: usize, rstd: usize, tmp: usize): void {
  for (let j = 0; j < n; j++) {
    const rs = 1 / Math.sqrt(<f64>load<f32>(at(variance, j)) + eps);
    store<f64>(tmp + (<usize>j << 3), rs);
    store<f32>(at(rstd, j), <f32>rs);
  }
  for (let r = 0; r < rows; r++) {
    const o = <usize>r * (<usize>n << 2);
    const x = X + o, y = Y + o, h = xhat + o;
    let j = 0;
    for (; j + 2 <= n; j += 2) {
      const z = f64x2.mul(f64x2.sub(ld2(at(x, j)), ld2(at(mean, j))), v128.load(tmp + (<usize>j << 3)));
      st2(at(h, j), z);
      st2(at(y, j), f64x2.add(f64x2.mul(ld2(at(gamma, j)), z), ld2(at(beta, j))));
    }
    for (; j < n; j++) {
      const z = (<f64>load<f32>(at(x, j)) - <f64>load<f32>(at(mean, j))) * load<f64>(tmp + (<usize>j << 3));
      store<f32>(at(h, j), <f32>z);
      store<f32>(at(y, j), <f32>(<f64>load<f32>(at(gamma, j)) * z + <f64>load<f32>(at(beta, j))));
    }
  }
}

/** Batch norm backward (see js.ts). tmp: 2n f64. */
export function batchNormBackward(rows: i32, n: i32, dY: usize, xhat: usize, rstd: usize, gamma: usize,
  mask: usize, training: i32, dGamma: usize, dBeta: usize, dX: usize, tmp: usize): void {
  let count = 0;
  for (let r = 0; r < rows; r++) if (rowOn(mask, r)) count++;
  const s1 = tmp, s2 = tmp + (<usize>n << 3);
  memory.fill(tmp, 0, <usize>n << 4);
  for (let r = 0; r < rows; r++) {
    if (!rowOn(mask, r)) continue;
    const o = <usize>r * (<usize>n << 2);
    const dy = dY + o, h = xhat + o;
    let j = 0;
    for (; j + 2 <= n; j += 2) {
      const d = ld2(at(dy, j)), z = ld2(at(h, j));
      const dg = f64x2.mul(d, ld2(at(gamma, j)));
      const q1 = s1 + (<usize>j << 3), q2 = s2 + (<usize>j << 3);
      v128.store(q1, f64x2.add(v128.load(q1), dg));
      v128.store(q2, f64x2.add(v128.load(q2), f64x2.mul(dg, z)));
      const pg = at(dGamma, j), pb = at(dBeta, j);
      st2(pg, f64x2.add(ld2(pg), f64x2.mul(d, z)));
      st2(pb, f64x2.add(ld2(pb), d));
    }
    for (; j < n; j++) {
      const d = <f64>load<f32>(at(dy, j)), z = <f64>load<f32>(at(h, j));
      const dg = d * <f64>load<f32>(at(gamma, j));
      const q1 = s1 + (<usize>j << 3), q2 = s2 + (<usize>j << 3);
      store<f64>(q1, load<f64>(q1) + dg);
      store<f64>(q2, load<f64>(q2) + dg * z);
      const pg = at(dGamma, j), pb = at(dBeta, j);
      store<f32>(pg, <f32>(<f64>load<f32>(pg) + d * z));
      store<f32>(pb, <f32>(<f64>load<f32>(pb) + d));
    }
  }
  if (count > 0) {
    const c = <f64>count;
    for (let j = 0; j < n; j++) {
      const q1 = s1 + (<usize>j << 3), q2 = s2 + (<usize>j << 3);
      store<f64>(q1, load<f64>(q1) / c);
      store<f64>(q2, load<f64>(q2) / c);
    }
  }
  for (let r = 0; r < rows; r++) {
    const o = <usize>r * (<usize>n << 2);
    const dy = dY + o, h = xhat + o, dx = dX + o;
    if (!rowOn(mask, r)) { memory.fill(dx, 0, <usize>n << 2); continue; }
    let j = 0;
    if (!training) {
      for (; j + 2 <= n; j += 2) st2(at(dx, j), f64x2.mul(f64x2.mul(ld2(at(dy, j)), ld2(at(gamma, j))), ld2(at(rstd, j))));
      for (; j < n; j++) store<f32>(at(dx, j), <f32>(<f64>load<f32>(at(dy, j)) * <f64>load<f32>(at(gamma, j)) * <f64>load<f32>(at(rstd, j))));
    } else {
      for (; j + 2 <= n; j += 2) {
        const t = f64x2.sub(f64x2.sub(f64x2.mul(ld2(at(dy, j)), ld2(at(gamma, j))), v128.load(s1 + (<usize>j << 3))),
          f64x2.mul(ld2(at(h, j)), v128.load(s2 + (<usize>j << 3))));
        st2(at(dx, j), f64x2.mul(ld2(at(rstd, j)), t));
      }
      for (; j < n; j++) {
        const t = <f64>load<f32>(at(dy, j)) * <f64>load<f32>(at(gamma, j)) - load<f64>(s1 + (<usize>j << 3)) -
          <f64>load<f32>(at(h, j)) * load<f64>(s2 + (<usize>j << 3));
        store<f32>(at(dx, j), <f32>(<f64>load<f32>(at(rstd, j)) * t));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Batch-1 inference (sampling one token at a time): each layer step is one pass over its weights,
// packed once per plan so that the pass reads one sequential stream. Hidden units go in quads
// (Hp = H rounded up to 4): for quad q the packed layer holds that quad's gate groups, each the 4
// rows (gate G of units 4q..4q+3) over the columns of x (Ip, absent for the table layer) then of h
// (Hp), stored [K/4][4 rows][4 columns]. A thread that owns a range of quads computes all the gates
// of its units and finishes their cell without waiting for the others. Padding rows, columns and
// biases are zero, so padding units stay exactly 0.
//   LSTM: groups i, f, g, o over [x; h]     GRU: r, z over [x; h], n_x over x, n_h over h
//   RNN:  one group over [x; h]             decoder: groups of 4 rows over h
// ---------------------------------------------------------------------------------------------

/** Gate groups per quad, and how many of them cover [x; h] (the rest: GRU's n_x (x), n_h (h)). */
// @ts-ignore: decorator
@inline function s1Groups(kind: i32): i32 { return kind == 0 ? 4 : kind == 1 ? 4 : 1; }

/** Bytes of one quad of a packed layer (kind 0 LSTM, 1 GRU, 2/3 RNN tanh/relu; Ip, Hp multiples of 4). */
export function step1QuadBytes(kind: i32, Ip: i32, Hp: i32): i32 {
  if (kind == 1) return 3 * (Ip + Hp) * 16;
  return s1Groups(kind) * (Ip + Hp) * 16;
}

/** Pack rows row0.. (valid of them, the rest zero) of W [*, ld], columns [0, K) padded to Kp, as [Kp/4][4][4]. */
function s1PackSeg(dst: usize, W: usize, ld: i32, row0: i32, valid: i32, K: i32, Kp: i32): usize {
  if (valid == 4 && K == Kp) {
    // 4 whole rows: 16 bytes of each per 64-byte line of dst, written only where it differs (packing the
    // same weights again, each time a plan is loaded, then only reads)
    const step = <usize>ld << 2, r0 = at(W, row0 * ld), r1 = r0 + step, r2 = r1 + step, r3 = r2 + step;
    const end = <usize>K << 2;
    for (let o: usize = 0; o < end; o += 16) {
      const a = v128.load(r0 + o), b = v128.load(r1 + o), c = v128.load(r2 + o), d = v128.load(r3 + o);
      const x = v128.or(v128.or(v128.xor(a, v128.load(dst)), v128.xor(b, v128.load(dst, 16))),
        v128.or(v128.xor(c, v128.load(dst, 32)), v128.xor(d, v128.load(dst, 48))));
      if (v128.any_true(x)) {
        v128.store(dst, a); v128.store(dst, b, 16); v128.store(dst, c, 32); v128.store(dst, d, 48);
      }
      dst += 64;
    }
    return dst;
  }
  for (let k = 0; k < Kp; k += 4) {
    for (let r = 0; r < 4; r++) {
      if (r < valid && k + 4 <= K) {
        v128.store(dst, v128.load(at(W, (row0 + r) * ld + k)));
      } else {
        for (let c = 0; c < 4; c++) {
          store<f32>(dst + (<usize>c << 2), r < valid && k + c < K ? load<f32>(at(W, (row0 + r) * ld + k + c)) : 0);
        }
      }
      dst += 16;
    }
  }
  return dst;
}

/**
 * Pack quads q0..q1 of a layer: W_ih [G*H, I] (I = 0: no x part) and W_hh [G*H, H] (PyTorch layouts) into
 * dst (the whole packed layer, step1QuadBytes per quad).
 */
export function step1Pack(kind: i32, H: i32, I: i32, wih: usize, whh: usize, dst: usize, q0: i32, q1: i32): void {
  const Ip = (I + 3) & ~3, Hp = (H + 3) & ~3;
  const qb = <usize>step1QuadBytes(kind, Ip, Hp);
  for (let q = q0; q < q1; q++) {
    let d = dst + <usize>q * qb;
    const u = q * 4, valid = min(4, H - u);
    const full = kind == 1 ? 2 : s1Groups(kind);
    for (let g = 0; g < full; g++) {
      if (Ip) d = s1PackSeg(d, wih, I, g * H + u, valid, I, Ip);
      d = s1PackSeg(d, whh, H, g * H + u, valid, H, Hp);
    }
    if (kind == 1) {
      if (Ip) d = s1PackSeg(d, wih, I, 2 * H + u, valid, I, Ip);
      d = s1PackSeg(d, whh, H, 2 * H + u, valid, H, Hp);
    }
  }
}

/** Pack rows of a decoder W [V, H] for groups g0..g1 of 4 rows (columns padded to Hp). */
export function step1PackRows(V: i32, H: i32, W: usize, dst: usize, g0: i32, g1: i32): void {
  const Hp = (H + 3) & ~3;
  for (let g = g0; g < g1; g++) s1PackSeg(dst + <usize>g * (<usize>Hp << 4), W, H, g * 4, min(4, V - g * 4), H, Hp);
}

/** The 4 dot products of a packed group with [x (nx floats); h (nh floats)], nx and nh multiples of 4. */
// @ts-ignore: decorator
@inline function s1Dot(p: usize, x: usize, nx: i32, h: usize, nh: i32): v128 {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  for (let seg = 0; seg < 2; seg++) {
    let v = seg == 0 ? x : h;
    const e = v + (<usize>(seg == 0 ? nx : nh) << 2);
    // two column blocks per step, added pairwise: one add per step on each row's chain (sequential FMAs
    // would make the loop wait on the FMA latency: 27% slower on Zen 4)
    for (; v + 32 <= e; v += 32) {
      const a = v128.load(v), b = v128.load(v, 16);
      s0 = f32x4.add(s0, fma(b, v128.load(p, 64), f32x4.mul(a, v128.load(p))));
      s1 = f32x4.add(s1, fma(b, v128.load(p, 80), f32x4.mul(a, v128.load(p, 16))));
      s2 = f32x4.add(s2, fma(b, v128.load(p, 96), f32x4.mul(a, v128.load(p, 32))));
      s3 = f32x4.add(s3, fma(b, v128.load(p, 112), f32x4.mul(a, v128.load(p, 48))));
      p += 128;
    }
    if (v < e) {
      const a = v128.load(v);
      s0 = fma(a, v128.load(p), s0); s1 = fma(a, v128.load(p, 16), s1);
      s2 = fma(a, v128.load(p, 32), s2); s3 = fma(a, v128.load(p, 48), s3);
      p += 64;
    }
  }
  // row r's sum: (lane0 + lane2) + (lane1 + lane3), as gemmSmall adds them
  const u0 = f32x4.add(v128.shuffle<f32>(s0, s1, 0, 4, 1, 5), v128.shuffle<f32>(s0, s1, 2, 6, 3, 7));
  const u1 = f32x4.add(v128.shuffle<f32>(s2, s3, 0, 4, 1, 5), v128.shuffle<f32>(s2, s3, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(u0, u1, 0, 1, 4, 5), v128.shuffle<f32>(u0, u1, 2, 3, 6, 7));
}

/**
 * One batch-1 step of quads q0..q1 of a packed layer. x [Ip] (ignored when Ip = 0), hPrev/cPrev [Hp] ->
 * hOut/cOut [Hp]. xb [G*Hp]: what is added to the x side before the nonlinearity (the biases, or the
 * table row of the token for layer 0); bhn [Hp]: GRU's b_hn (inside r * (W_hn h + b_hn)).
 */
export function step1Layer(kind: i32, Ip: i32, Hp: i32, Wp: usize, x: usize, hPrev: usize, cPrev: usize,
  hOut: usize, cOut: usize, xb: usize, bhn: usize, q0: i32, q1: i32): void {
  const gb = <usize>(Ip + Hp) << 4, Hb = <usize>Hp << 2;
  const qb = <usize>step1QuadBytes(kind, Ip, Hp);
  for (let q = q0; q < q1; q++) {
    const p = Wp + <usize>q * qb, o = <usize>q << 4;
    if (kind == 0) {
      const ig = vsigmoid(f32x4.add(s1Dot(p, x, Ip, hPrev, Hp), v128.load(xb + o)));
      const fg = vsigmoid(f32x4.add(s1Dot(p + gb, x, Ip, hPrev, Hp), v128.load(xb + Hb + o)));
      const gg = vtanh(f32x4.add(s1Dot(p + 2 * gb, x, Ip, hPrev, Hp), v128.load(xb + 2 * Hb + o)));
      const og = vsigmoid(f32x4.add(s1Dot(p + 3 * gb, x, Ip, hPrev, Hp), v128.load(xb + 3 * Hb + o)));
      const cv = f32x4.add(f32x4.mul(fg, v128.load(cPrev + o)), f32x4.mul(ig, gg));
      v128.store(cOut + o, cv);
      v128.store(hOut + o, f32x4.mul(og, vtanh(cv)));
    } else if (kind == 1) {
      const r = vsigmoid(f32x4.add(s1Dot(p, x, Ip, hPrev, Hp), v128.load(xb + o)));
      const z = vsigmoid(f32x4.add(s1Dot(p + gb, x, Ip, hPrev, Hp), v128.load(xb + Hb + o)));
      const pn = p + 2 * gb;
      let nx = v128.load(xb + 2 * Hb + o);
      if (Ip) nx = f32x4.add(s1Dot(pn, x, Ip, hPrev, 0), nx);
      const nh = f32x4.add(s1Dot(pn + (<usize>Ip << 4), x, 0, hPrev, Hp), v128.load(bhn + o));
      const n = vtanh(f32x4.add(nx, f32x4.mul(r, nh)));
      v128.store(hOut + o, f32x4.add(f32x4.mul(f32x4.sub(f32x4.splat(1), z), n), f32x4.mul(z, v128.load(hPrev + o))));
    } else {
      const a = f32x4.add(s1Dot(p, x, Ip, hPrev, Hp), v128.load(xb + o));
      v128.store(hOut + o, kind == 2 ? vtanh(a) : relu4(a, f32x4.splat(0)));
    }
  }
}

/** out[4g..4g+4) = W rows · h + bias for the groups g0..g1 of a packed decoder (Hp columns). */
export function step1Rows(Hp: i32, Wp: usize, h: usize, bias: usize, out: usize, g0: i32, g1: i32): void {
  const gb = <usize>Hp << 4;
  for (let g = g0; g < g1; g++) {
    const o = <usize>g << 4;
    v128.store(out + o, f32x4.add(s1Dot(Wp + <usize>g * gb, h, 0, h, Hp), v128.load(bias + o)));
  }
}

/** 1 when the n floats at a and b are bitwise equal, else 0. */
export function sameBits(n: i32, a: usize, b: usize): i32 {
  let d = i32x4.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    d = v128.or(d, v128.or(v128.or(v128.xor(v128.load(a + o), v128.load(b + o)), v128.xor(v128.load(a + o, 16), v128.load(b + o, 16))),
      v128.or(v128.xor(v128.load(a + o, 32), v128.load(b + o, 32)), v128.xor(v128.load(a + o, 48), v128.load(b + o, 48)))));
  }
  let t: u32 = 0;
  for (; i < n; i++) t |= load<u32>(at(a, i)) ^ load<u32>(at(b, i));
  return v128.any_true(d) || t != 0 ? 0 : 1;
}
