// The WebGPU backend: the Backend interface's kernels as WGSL compute shaders, for Node (Dawn, the npm
// package `webgpu`) and browsers.
//
// How it works
//   - Every Buf handed out by `alloc` is a host Float32Array (its "mirror") paired with a GPU buffer of the
//     same length. A buffer is in one of three states: HOST (the host array is the truth: uploaded before
//     its next use on the device), GPU (the device holds the truth; the host array is stale) or BOTH.
//     New buffers start HOST, so code that fills weights or inputs on the host before using them needs
//     nothing special. Code that writes into a buffer on the host after the device used it calls
//     `hostWrote(buf)`; code that reads results on the host first awaits `syncHost(bufs)`.
//   - Kernels are recorded, not run: each call appends a dispatch to one compute pass of one command
//     encoder; the pass is submitted when a result must come back (`syncHost`, `takeLoss`), when the ring of
//     per-dispatch parameters is full, or on `flush()`. A whole training step is one or two submissions.
//   - Scalar results stay on the device: softmaxCrossEntropy returns NaN and adds its loss to a device
//     slot that `takeLoss()` reads back (one read per training step); clipping runs on the device
//     (`clipGradNorm`). sumSquares, which must return a number at once, is refused.
//   - Kernel arguments are whole buffers plus element offsets (in a small uniform block per dispatch), so
//     the layers' (buffer, offset) calls map one to one. Two arguments that are the same buffer share one
//     binding: each kernel is a WGSL template whose buffer names ($X, $Y, ...) are bound per aliasing
//     pattern (WebGPU forbids binding one buffer twice when one binding is writable).

import type { Activation, Backend, Buf, Step1Spec } from './backend.js';
import { releaseWebGPU, requestWebGPUDevice, type WebGPUDeviceOptions } from './webgpu-device.js';

const HOST = 0, GPU = 1, BOTH = 2;
type State = typeof HOST | typeof GPU | typeof BOTH;

interface Entry {
  id: number;
  gpu: GPUBuffer;
  n: number;
  state: State;
}

interface PlanNode { next: Map<number, PlanNode>; plan: { pipeline: GPUComputePipeline; bindGroup: GPUBindGroup } | null }

/** A kernel argument: a backend buffer, or transient integer data uploaded for this call. */
type Arg = Buf | { ints: Int32Array | Uint32Array };

interface KernelDef {
  /** Buffer argument names, as used in the body with a `$` prefix. */
  args: string[];
  /** The arguments the kernel writes. */
  writes: string[];
  /** Arguments holding i32 data (ids, targets, masks); the others are f32. */
  ints?: string[];
  /** Uniform parameter names; those in `floats` are f32, the others u32. */
  params: string[];
  floats?: string[];
  /** WGSL: declarations before the entry point (workgroup memory, helper functions). */
  decls?: string;
  /** WGSL body of `main`; `u.<param>` are the parameters; `gid` is the flat global index (1-D kernels). */
  body: string;
  /** Workgroup size (1-D) or the literal attribute for 2-D kernels. */
  wg: number | string;
}

const PARAM_SLOT = 256; // bytes per dispatch in the uniform ring (minUniformBufferOffsetAlignment)
const RING = 4096; // dispatches per submission at most

const WGSL_HELPERS = /* wgsl */ `
fn sigm(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
fn th(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }
`;

// ---- the kernels -------------------------------------------------------------------------------------

const EW = 256; // workgroup size of the elementwise kernels

function gemmDef(transA: boolean, transB: boolean, T: number): KernelDef {
  // C[M,N] = beta*C + op(A)[M,K] · op(B)[K,N]; a TxT tile per workgroup of 16x16 threads, each thread RxR
  // outputs in V-wide runs (rows V*ty + 16V*i + v, columns V*tx + 16V*j + v: vector reads of the panels,
  // V = 4, or 2 for 32x32 tiles), K in panels of KP (16, or 8 for 128x128 tiles: 8 KB of workgroup memory)
  // through workgroup memory, panel rows padded to T+4 (the transposing stores of k-contiguous loads fall
  // in distinct banks; vectors stay aligned). Split K: the workgroups of z-index s take K range
  // [s*kLen, (s+1)*kLen) and (with split != 0) write their partial tile to C = a scratch [S, M, N] that
  // splitKReduce sums.
  const R = T / 16, V = R >= 4 ? 4 : R, RV = R / V, KP = T === 128 ? 8 : 16, P = T + 4, LD = (T * KP) / 256;
  const vec = `vec${V}<f32>`, PV = P / V;
  // One panel element per thread and round: x (m of A, n of B) and k from idx, coalesced along the stored
  // contiguous dimension, zero outside the matrix or the K range, stored [k][x] in the padded panel.
  const load = (X: 'A' | 'B', x: 'm' | 'n', kContiguous: boolean): string => {
    const [x0, lim, off, ld, panel] = X === 'A' ? ['m0', 'u.M', 'u.aOff', 'u.lda', 'As'] : ['n0', 'u.N', 'u.bOff', 'u.ldb', 'Bs'];
    const at = kContiguous ? `(${x0} + ${x}) * ${ld} + k0 + k` : `(k0 + k) * ${ld} + ${x0} + ${x}`;
    return `${kContiguous ? `let ${x} = idx / ${KP}u; let k = idx % ${KP}u;` : `let k = idx / ${T}u; let ${x} = idx % ${T}u;`}
       var v = 0.0; if (${x0} + ${x} < ${lim} && k0 + k < kEnd) { v = $${X}[${off} + ${at}]; }
       ${panel}[(k * ${P}u + ${x}) / ${V}u][(k * ${P}u + ${x}) % ${V}u] = v;`;
  };
  const loadA = load('A', 'm', !transA); // A stored [M, lda] (k contiguous) or, transposed, [K, lda]
  const loadB = load('B', 'n', transB); // B stored [K, ldb] (n contiguous) or, transposed, [N, ldb]
  return {
    args: ['A', 'B', 'C'], writes: ['C'],
    params: ['M', 'N', 'K', 'lda', 'ldb', 'ldc', 'aOff', 'bOff', 'cOff', 'beta', 'kLen', 'split'],
    decls: `var<workgroup> As: array<${vec}, ${(KP * P) / V}>;\nvar<workgroup> Bs: array<${vec}, ${(KP * P) / V}>;`,
    wg: '16, 16',
    body: `
  let m0 = wid.y * ${T}u; let n0 = wid.x * ${T}u; let tx = lid.x; let ty = lid.y; let li = ty * 16u + tx;
  let kBeg = wid.z * u.kLen; let kEnd = min(u.K, kBeg + u.kLen);
  var acc: array<f32, ${R * R}>;
  for (var k0 = kBeg; k0 < kEnd; k0 += ${KP}u) {
    for (var e = 0u; e < ${LD}u; e++) { let idx = li + e * 256u; ${loadA} }
    for (var e = 0u; e < ${LD}u; e++) { let idx = li + e * 256u; ${loadB} }
    workgroupBarrier();
    for (var k = 0u; k < ${KP}u; k++) {
      var a: array<${vec}, ${RV}>; var b: array<${vec}, ${RV}>;
      for (var i = 0u; i < ${RV}u; i++) { a[i] = As[k * ${PV}u + ty + 16u * i]; b[i] = Bs[k * ${PV}u + tx + 16u * i]; }
      for (var i = 0u; i < ${R}u; i++) {
        let ai = a[i / ${V}u][i % ${V}u];
        for (var j = 0u; j < ${R}u; j++) { acc[i * ${R}u + j] = fma(ai, b[j / ${V}u][j % ${V}u], acc[i * ${R}u + j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < ${R}u; i++) {
    let m = m0 + ${V}u * ty + ${16 * V}u * (i / ${V}u) + i % ${V}u;
    if (m >= u.M) { continue; }
    for (var j = 0u; j < ${R}u; j++) {
      let n = n0 + ${V}u * tx + ${16 * V}u * (j / ${V}u) + j % ${V}u;
      if (n >= u.N) { continue; }
      var v = acc[i * ${R}u + j];
      if (u.split != 0u) { $C[wid.z * u.M * u.N + m * u.N + n] = v; continue; }
      let c = u.cOff + m * u.ldc + n;
      if (u.beta != 0u) { v += $C[c]; }
      $C[c] = v;
    }
  }`,
  };
}

const gemmKernels: Record<string, KernelDef> = {};
/** The tile sizes there are kernels for (T x T outputs per workgroup of 256 threads, (T/16)^2 per thread). */
export const GEMM_TILES = [128, 64, 32] as const;
for (const T of GEMM_TILES) {
  for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]]) {
    gemmKernels[`gemm${T}_${ta ? 't' : 'n'}${tb ? 't' : 'n'}`] = gemmDef(ta, tb, T);
  }
}

const K: Record<string, KernelDef> = {
  ...gemmKernels,
  splitKReduce: { // C[cOff + m*ldc + n] = beta*C + sum over s of P[s, m, n]
    args: ['P', 'C'], writes: ['C'], params: ['M', 'N', 'S', 'ldc', 'cOff', 'beta'], wg: EW,
    body: `let mn = u.M * u.N; if (gid >= mn) { return; } let m = gid / u.N; let n = gid % u.N;
  var v = 0.0; for (var q = 0u; q < u.S; q++) { v += $P[q * mn + gid]; }
  let c = u.cOff + m * u.ldc + n; if (u.beta != 0u) { v += $C[c]; } $C[c] = v;`,
  },

  addRowVector: {
    args: ['X', 'b', 'Y'], writes: ['Y'], params: ['n', 'cols', 'xOff', 'bOff', 'yOff'], wg: EW,
    body: `if (gid >= u.n) { return; } let j = gid % u.cols; $Y[u.yOff + gid] = $X[u.xOff + gid] + $b[u.bOff + j];`,
  },
  sumRowsPartial: { // part[c, j] = sum of dY over rows [c*chunk, (c+1)*chunk): threads over (column, chunk)
    args: ['dY', 'part'], writes: ['part'], params: ['rows', 'n', 'dyOff', 'chunk', 'total'], wg: EW,
    body: `if (gid >= u.total) { return; } let c = gid / u.n; let j = gid % u.n; let r1 = min(u.rows, (c + 1u) * u.chunk);
  var s = 0.0; for (var r = c * u.chunk; r < r1; r++) { s += $dY[u.dyOff + r * u.n + j]; } $part[gid] = s;`,
  },
  sumRows: { // one thread per column, rows in order (as the reference sums); also sums sumRowsPartial's chunks
    args: ['dY', 'db'], writes: ['db'], params: ['rows', 'n', 'dyOff', 'dbOff'], wg: 64,
    body: `if (gid >= u.n) { return; } var s = $db[u.dbOff + gid];
  for (var r = 0u; r < u.rows; r++) { s += $dY[u.dyOff + r * u.n + gid]; } $db[u.dbOff + gid] = s;`,
  },
  lstmFwd: {
    args: ['G', 'cp', 'c', 'h'], writes: ['G', 'c', 'h'], params: ['n', 'H', 'gOff', 'cpOff', 'cOff', 'hOff'], wg: EW,
    body: `if (gid >= u.n) { return; } let b = gid / u.H; let j = gid % u.H; let g = u.gOff + b * 4u * u.H + j;
  let ig = sigm($G[g]); let fg = sigm($G[g + u.H]); let gg = th($G[g + 2u * u.H]); let og = sigm($G[g + 3u * u.H]);
  $G[g] = ig; $G[g + u.H] = fg; $G[g + 2u * u.H] = gg; $G[g + 3u * u.H] = og;
  let cv = fg * $cp[u.cpOff + gid] + ig * gg; $c[u.cOff + gid] = cv; $h[u.hOff + gid] = og * th(cv);`,
  },
  lstmBwd: {
    args: ['G', 'cp', 'c', 'dh', 'dc', 'dG'], writes: ['dc', 'dG'],
    params: ['n', 'H', 'gOff', 'cpOff', 'cOff', 'dhOff', 'dcOff', 'dgOff'], wg: EW,
    body: `if (gid >= u.n) { return; } let b = gid / u.H; let j = gid % u.H; let g = u.gOff + b * 4u * u.H + j;
  let dg = u.dgOff + b * 4u * u.H + j;
  let ig = $G[g]; let fg = $G[g + u.H]; let gg = $G[g + 2u * u.H]; let og = $G[g + 3u * u.H];
  let tc = th($c[u.cOff + gid]); let dhv = $dh[u.dhOff + gid];
  let dcv = $dc[u.dcOff + gid] + dhv * og * (1.0 - tc * tc);
  $dG[dg] = dcv * gg * ig * (1.0 - ig);
  $dG[dg + u.H] = dcv * $cp[u.cpOff + gid] * fg * (1.0 - fg);
  $dG[dg + 2u * u.H] = dcv * ig * (1.0 - gg * gg);
  $dG[dg + 3u * u.H] = dhv * tc * og * (1.0 - og);
  $dc[u.dcOff + gid] = dcv * fg;`,
  },
  gruFwd: {
    args: ['xp', 'hp', 'hv', 'act', 'h'], writes: ['act', 'h'], params: ['n', 'H', 'xOff', 'qOff', 'vOff', 'aOff', 'hOff'], wg: EW,
    body: `if (gid >= u.n) { return; } let b = gid / u.H; let j = gid % u.H; let H = u.H;
  let x = u.xOff + b * 3u * H + j; let q = u.qOff + b * 3u * H + j; let a = u.aOff + b * 3u * H + j;
  let r = sigm($xp[x] + $hp[q]); let z = sigm($xp[x + H] + $hp[q + H]); let nn = th($xp[x + 2u * H] + r * $hp[q + 2u * H]);
  $act[a] = r; $act[a + H] = z; $act[a + 2u * H] = nn;
  $h[u.hOff + gid] = (1.0 - z) * nn + z * $hv[u.vOff + gid];`,
  },
  gruBwd: {
    args: ['act', 'hp', 'hv', 'dh', 'dxp', 'dhp', 'dhv'], writes: ['dxp', 'dhp', 'dhv'],
    params: ['n', 'H', 'aOff', 'qOff', 'vOff', 'dhOff', 'dxOff', 'dqOff', 'dvOff'], wg: EW,
    body: `if (gid >= u.n) { return; } let b = gid / u.H; let j = gid % u.H; let H = u.H;
  let a = u.aOff + b * 3u * H + j; let q = u.qOff + b * 3u * H + j; let dx = u.dxOff + b * 3u * H + j; let dq = u.dqOff + b * 3u * H + j;
  let r = $act[a]; let z = $act[a + H]; let nn = $act[a + 2u * H]; let d = $dh[u.dhOff + gid];
  let dn = d * (1.0 - z) * (1.0 - nn * nn);
  let dz = d * ($hv[u.vOff + gid] - nn) * z * (1.0 - z);
  let dr = dn * $hp[q + 2u * H] * r * (1.0 - r);
  $dxp[dx] = dr; $dxp[dx + H] = dz; $dxp[dx + 2u * H] = dn;
  $dhp[dq] = dr; $dhp[dq + H] = dz; $dhp[dq + 2u * H] = dn * r;
  $dhv[u.dvOff + gid] = d * z;`,
  },
  rnnFwdTanh: { args: ['a'], writes: ['a'], params: ['n', 'aOff'], wg: EW,
    body: `if (gid >= u.n) { return; } $a[u.aOff + gid] = th($a[u.aOff + gid]);` },
  rnnFwdRelu: { args: ['a'], writes: ['a'], params: ['n', 'aOff'], wg: EW,
    body: `if (gid >= u.n) { return; } $a[u.aOff + gid] = max($a[u.aOff + gid], 0.0);` },
  rnnBwdTanh: { args: ['h', 'dh', 'da'], writes: ['da'], params: ['n', 'hOff', 'dhOff', 'daOff'], wg: EW,
    body: `if (gid >= u.n) { return; } let v = $h[u.hOff + gid]; $da[u.daOff + gid] = $dh[u.dhOff + gid] * (1.0 - v * v);` },
  rnnBwdRelu: { args: ['h', 'dh', 'da'], writes: ['da'], params: ['n', 'hOff', 'dhOff', 'daOff'], wg: EW,
    body: `if (gid >= u.n) { return; } $da[u.daOff + gid] = select(0.0, $dh[u.dhOff + gid], $h[u.hOff + gid] > 0.0);` },

  embFwd: {
    args: ['ids', 'W', 'out'], writes: ['out'], ints: ['ids'], params: ['n', 'dim', 'outOff'], wg: EW,
    body: `if (gid >= u.n) { return; } let r = gid / u.dim; let j = gid % u.dim;
  $out[u.outOff + gid] = $W[u32($ids[r]) * u.dim + j];`,
  },
  embBwd: { // one thread per (table row, column): scans the ids in order (deterministic, no atomics)
    args: ['ids', 'dOut', 'dW'], writes: ['dW'], ints: ['ids'], params: ['total', 'n', 'dim', 'dOff'], wg: EW,
    body: `if (gid >= u.total) { return; } let v = i32(gid / u.dim); let j = gid % u.dim;
  var s = $dW[gid]; var hit = false;
  for (var r = 0u; r < u.n; r++) { if ($ids[r] == v) { s += $dOut[u.dOff + r * u.dim + j]; hit = true; } }
  if (hit) { $dW[gid] = s; }`,
  },
  softmaxCE: { // one workgroup per row: loss per row into rowLoss, dlogits when wanted
    args: ['L', 'tg', 'dL', 'rowLoss'], writes: ['dL', 'rowLoss'], ints: ['tg'],
    params: ['n', 'V', 'lOff', 'dOff', 'withGrad', 'scale'], floats: ['scale'], wg: 256,
    decls: `var<workgroup> red: array<f32, 256>;`,
    body: `let r = wid.y * nwg.x + wid.x; if (r >= u.n) { return; }
  let t = $tg[r]; let l = u.lOff + r * u.V; let d = u.dOff + r * u.V; let k = lid.x;
  if (t < 0) {
    if (u.withGrad != 0u) { for (var j = k; j < u.V; j += 256u) { $dL[d + j] = 0.0; } }
    if (k == 0u) { $rowLoss[r] = 0.0; }
    return;
  }
  var mx = -3.4e38; for (var j = k; j < u.V; j += 256u) { mx = max(mx, $L[l + j]); }
  red[k] = mx; workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) { if (k < s) { red[k] = max(red[k], red[k + s]); } workgroupBarrier(); }
  mx = red[0]; workgroupBarrier();
  var sum = 0.0; for (var j = k; j < u.V; j += 256u) { sum += exp($L[l + j] - mx); }
  red[k] = sum; workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) { if (k < s) { red[k] = red[k] + red[k + s]; } workgroupBarrier(); }
  let lse = mx + log(red[0]);
  if (k == 0u) { $rowLoss[r] = lse - $L[l + u32(t)]; }
  if (u.withGrad != 0u) {
    for (var j = k; j < u.V; j += 256u) {
      var g = exp($L[l + j] - lse) * u.scale;
      if (j == u32(t)) { g -= u.scale; }
      $dL[d + j] = g;
    }
  }`,
  },
  reduceLoss: { // one workgroup: slots[slot] = sum of rowLoss[0..n)
    args: ['rowLoss', 'slots'], writes: ['slots'], params: ['n', 'slot'], wg: 256,
    decls: `var<workgroup> red: array<f32, 256>;`,
    body: `let k = lid.x; var s = 0.0; for (var r = k; r < u.n; r += 256u) { s += $rowLoss[r]; }
  red[k] = s; workgroupBarrier();
  for (var w = 128u; w > 0u; w >>= 1u) { if (k < w) { red[k] = red[k] + red[k + w]; } workgroupBarrier(); }
  if (k == 0u) { $slots[u.slot] = red[0]; }`,
  },

  mul: { args: ['a', 'b', 'y'], writes: ['y'], params: ['n', 'aOff', 'bOff', 'yOff'], wg: EW,
    body: `if (gid >= u.n) { return; } $y[u.yOff + gid] = $a[u.aOff + gid] * $b[u.bOff + gid];` },
  add: { args: ['a', 'b', 'y'], writes: ['y'], params: ['n', 'aOff', 'bOff', 'yOff'], wg: EW,
    body: `if (gid >= u.n) { return; } $y[u.yOff + gid] = $a[u.aOff + gid] + $b[u.bOff + gid];` },
  addTo: { args: ['x', 'y'], writes: ['y'], params: ['n', 'xOff', 'yOff'], wg: EW,
    body: `if (gid >= u.n) { return; } $y[u.yOff + gid] = $y[u.yOff + gid] + $x[u.xOff + gid];` },
  scale: { args: ['x'], writes: ['x'], params: ['n', 'xOff', 's'], floats: ['s'], wg: EW,
    body: `if (gid >= u.n) { return; } $x[u.xOff + gid] = $x[u.xOff + gid] * u.s;` },
  fill: { args: ['x'], writes: ['x'], params: ['n', 'xOff', 'v'], floats: ['v'], wg: EW,
    body: `if (gid >= u.n) { return; } $x[u.xOff + gid] = u.v;` },
  copy2d: { args: ['X', 'Y'], writes: ['Y'], params: ['n', 'cols', 'xOff', 'ldx', 'yOff', 'ldy'], wg: EW,
    body: `if (gid >= u.n) { return; } let r = gid / u.cols; let j = gid % u.cols;
  $Y[u.yOff + r * u.ldy + j] = $X[u.xOff + r * u.ldx + j];` },

  adam: {
    args: ['p', 'g', 'm', 'v'], writes: ['p', 'm', 'v'], params: ['n', 'b1', 'b2', 'eps', 'wd', 'stepSize', 'sqrtBc2'],
    floats: ['b1', 'b2', 'eps', 'wd', 'stepSize', 'sqrtBc2'], wg: EW,
    body: `if (gid >= u.n) { return; } let gi = $g[gid] + u.wd * $p[gid];
  let mi = u.b1 * $m[gid] + (1.0 - u.b1) * gi; let vi = u.b2 * $v[gid] + (1.0 - u.b2) * gi * gi;
  $m[gid] = mi; $v[gid] = vi; $p[gid] = $p[gid] - u.stepSize * mi / (sqrt(vi) / u.sqrtBc2 + u.eps);`,
  },
  sgd: {
    args: ['p', 'g'], writes: ['p'], params: ['n', 'lr', 'wd'], floats: ['lr', 'wd'], wg: EW,
    body: `if (gid >= u.n) { return; } $p[gid] = $p[gid] - u.lr * ($g[gid] + u.wd * $p[gid]);`,
  },
  sgdMomentum: {
    args: ['p', 'g', 'mom'], writes: ['p', 'mom'], params: ['n', 'lr', 'momentum', 'wd'], floats: ['lr', 'momentum', 'wd'], wg: EW,
    body: `if (gid >= u.n) { return; } let d = u.momentum * $mom[gid] + $g[gid] + u.wd * $p[gid];
  $mom[gid] = d; $p[gid] = $p[gid] - u.lr * d;`,
  },

  // global gradient-norm clipping: partial sums of squares, then the coefficient, then the scaling
  sumSqPartial: {
    args: ['x', 'part'], writes: ['part'], params: ['n', 'xOff', 'chunk', 'pOff'], wg: 256,
    decls: `var<workgroup> red: array<f32, 256>;`,
    body: `let k = lid.x; let w = wid.y * nwg.x + wid.x; let lo = w * u.chunk; let hi = min(u.n, lo + u.chunk);
  var s = 0.0; for (var i = lo + k; i < hi; i += 256u) { let v = $x[u.xOff + i]; s += v * v; }
  red[k] = s; workgroupBarrier();
  for (var q = 128u; q > 0u; q >>= 1u) { if (k < q) { red[k] = red[k] + red[k + q]; } workgroupBarrier(); }
  if (k == 0u) { $part[u.pOff + w] = red[0]; }`,
  },
  clipCoef: { // scalars[0] = norm, scalars[1] = min(1, maxNorm / (norm + 1e-6))
    args: ['part', 'scalars'], writes: ['scalars'], params: ['n', 'maxNorm'], floats: ['maxNorm'], wg: 256,
    decls: `var<workgroup> red: array<f32, 256>;`,
    body: `let k = lid.x; var s = 0.0; for (var i = k; i < u.n; i += 256u) { s += $part[i]; }
  red[k] = s; workgroupBarrier();
  for (var q = 128u; q > 0u; q >>= 1u) { if (k < q) { red[k] = red[k] + red[k + q]; } workgroupBarrier(); }
  if (k == 0u) { let norm = sqrt(red[0]); $scalars[0] = norm; $scalars[1] = min(1.0, u.maxNorm / (norm + 1e-6)); }`,
  },
  scaleBy: { args: ['x', 'scalars'], writes: ['x'], params: ['n', 'xOff'], wg: EW,
    body: `if (gid >= u.n) { return; } $x[u.xOff + gid] = $x[u.xOff + gid] * $scalars[1];` },

  lstmOut: {
    args: ['G', 'cn', 'h'], writes: ['h'], params: ['n', 'H', 'gOff', 'cnOff', 'hOff'], wg: EW,
    body: `if (gid >= u.n) { return; } let r = gid / u.H; let j = gid % u.H;
  $h[u.hOff + gid] = $G[u.gOff + r * 4u * u.H + 3u * u.H + j] * th($cn[u.cnOff + gid]);`,
  },
  lstmOutBwd: {
    args: ['G', 'cn', 'dh', 'dcn', 'dO'], writes: ['dcn', 'dO'], params: ['n', 'H', 'gOff', 'cnOff', 'dhOff', 'dcnOff', 'dOOff'], wg: EW,
    body: `if (gid >= u.n) { return; } let r = gid / u.H; let j = gid % u.H;
  let og = $G[u.gOff + r * 4u * u.H + 3u * u.H + j]; let tc = th($cn[u.cnOff + gid]); let d = $dh[u.dhOff + gid];
  $dcn[u.dcnOff + gid] = d * og * (1.0 - tc * tc); $dO[u.dOOff + gid] = d * tc * og * (1.0 - og);`,
  },

  // layer norm: one workgroup per row
  lnFwd: {
    args: ['X', 'gm', 'bt', 'Y', 'xh', 'rs'], writes: ['Y', 'xh', 'rs'],
    params: ['rows', 'n', 'xOff', 'gbOff', 'yOff', 'xhOff', 'rOff', 'eps'], floats: ['eps'], wg: 64,
    decls: `var<workgroup> red: array<f32, 64>;`,
    body: `let r = wid.y * nwg.x + wid.x; if (r >= u.rows) { return; } let k = lid.x;
  let x = u.xOff + r * u.n; let y = u.yOff + r * u.n; let h = u.xhOff + r * u.n;
  var s = 0.0; for (var j = k; j < u.n; j += 64u) { s += $X[x + j]; }
  red[k] = s; workgroupBarrier();
  for (var q = 32u; q > 0u; q >>= 1u) { if (k < q) { red[k] = red[k] + red[k + q]; } workgroupBarrier(); }
  let mean = red[0] / f32(u.n); workgroupBarrier();
  var v = 0.0; for (var j = k; j < u.n; j += 64u) { let d = $X[x + j] - mean; v += d * d; }
  red[k] = v; workgroupBarrier();
  for (var q = 32u; q > 0u; q >>= 1u) { if (k < q) { red[k] = red[k] + red[k + q]; } workgroupBarrier(); }
  let rsd = 1.0 / sqrt(red[0] / f32(u.n) + u.eps);
  if (k == 0u) { $rs[u.rOff + r] = rsd; }
  for (var j = k; j < u.n; j += 64u) { let z = ($X[x + j] - mean) * rsd; $xh[h + j] = z; $Y[y + j] = $gm[u.gbOff + j] * z + $bt[u.gbOff + j]; }`,
  },
  lnBwdParams: { // one thread per feature: dγ += Σ_r dY x̂, dβ += Σ_r dY (runs before lnBwd, which may overwrite dY)
    args: ['dY', 'xh', 'dG', 'dB'], writes: ['dG', 'dB'], params: ['rows', 'n', 'dyOff', 'xhOff', 'gbOff'], wg: 64,
    body: `if (gid >= u.n) { return; } var sg = $dG[u.gbOff + gid]; var sb = $dB[u.gbOff + gid];
  for (var r = 0u; r < u.rows; r++) { let d = $dY[u.dyOff + r * u.n + gid]; sg += d * $xh[u.xhOff + r * u.n + gid]; sb += d; }
  $dG[u.gbOff + gid] = sg; $dB[u.gbOff + gid] = sb;`,
  },
  lnBwd: {
    args: ['dY', 'xh', 'rs', 'gm', 'dX'], writes: ['dX'], params: ['rows', 'n', 'dyOff', 'xhOff', 'rOff', 'gbOff', 'dxOff'], wg: 64,
    decls: `var<workgroup> r1: array<f32, 64>;\nvar<workgroup> r2: array<f32, 64>;`,
    body: `let r = wid.y * nwg.x + wid.x; if (r >= u.rows) { return; } let k = lid.x;
  let dy = u.dyOff + r * u.n; let h = u.xhOff + r * u.n; let dx = u.dxOff + r * u.n; let rsd = $rs[u.rOff + r];
  var m1 = 0.0; var m2 = 0.0;
  for (var j = k; j < u.n; j += 64u) { let gy = $dY[dy + j] * $gm[u.gbOff + j]; m1 += gy; m2 += gy * $xh[h + j]; }
  r1[k] = m1; r2[k] = m2; workgroupBarrier();
  for (var q = 32u; q > 0u; q >>= 1u) { if (k < q) { r1[k] = r1[k] + r1[k + q]; r2[k] = r2[k] + r2[k + q]; } workgroupBarrier(); }
  m1 = r1[0] / f32(u.n); m2 = r2[0] / f32(u.n);
  workgroupBarrier();
  for (var j = k; j < u.n; j += 64u) { $dX[dx + j] = rsd * ($dY[dy + j] * $gm[u.gbOff + j] - m1 - $xh[h + j] * m2); }`,
  },
  // batch norm: one thread per feature, rows in order
  colStats: {
    args: ['X', 'mask', 'mean', 'vr'], writes: ['mean', 'vr'], ints: ['mask'], params: ['rows', 'n', 'xOff', 'useMask'], wg: 64,
    body: `if (gid >= u.n) { return; } var cnt = 0u; var m = 0.0;
  for (var r = 0u; r < u.rows; r++) { if (u.useMask == 0u || $mask[r] != 0) { cnt++; m += $X[u.xOff + r * u.n + gid]; } }
  if (cnt == 0u) { $mean[gid] = 0.0; $vr[gid] = 1.0; return; }
  m = m / f32(cnt); var v = 0.0;
  for (var r = 0u; r < u.rows; r++) { if (u.useMask == 0u || $mask[r] != 0) { let d = $X[u.xOff + r * u.n + gid] - m; v += d * d; } }
  $mean[gid] = m; $vr[gid] = v / f32(cnt);`,
  },
  normCols: {
    args: ['X', 'mean', 'vr', 'gm', 'bt', 'Y', 'xh', 'rs'], writes: ['Y', 'xh', 'rs'],
    params: ['rows', 'n', 'xOff', 'eps', 'gbOff', 'yOff', 'xhOff', 'rOff'], floats: ['eps'], wg: 64,
    body: `if (gid >= u.n) { return; } let j = gid; let rsd = 1.0 / sqrt($vr[j] + u.eps); let m = $mean[j];
  let g = $gm[u.gbOff + j]; let b = $bt[u.gbOff + j]; $rs[u.rOff + j] = rsd;
  for (var r = 0u; r < u.rows; r++) { let z = ($X[u.xOff + r * u.n + j] - m) * rsd; $xh[u.xhOff + r * u.n + j] = z; $Y[u.yOff + r * u.n + j] = g * z + b; }`,
  },
  bnBwd: {
    args: ['dY', 'xh', 'rs', 'gm', 'mask', 'dG', 'dB', 'dX'], writes: ['dG', 'dB', 'dX'], ints: ['mask'],
    params: ['rows', 'n', 'dyOff', 'xhOff', 'rOff', 'gbOff', 'useMask', 'training', 'dxOff'], wg: 64,
    body: `if (gid >= u.n) { return; } let j = gid; let rsd = $rs[u.rOff + j]; let g = $gm[u.gbOff + j];
  var cnt = 0u; var m1 = 0.0; var m2 = 0.0; var sg = $dG[u.gbOff + j]; var sb = $dB[u.gbOff + j];
  for (var r = 0u; r < u.rows; r++) {
    if (u.useMask != 0u && $mask[r] == 0) { continue; }
    cnt++; let d = $dY[u.dyOff + r * u.n + j]; let z = $xh[u.xhOff + r * u.n + j];
    m1 += d * g; m2 += d * g * z; sg += d * z; sb += d;
  }
  $dG[u.gbOff + j] = sg; $dB[u.gbOff + j] = sb;
  if (cnt > 0u) { m1 = m1 / f32(cnt); m2 = m2 / f32(cnt); }
  for (var r = 0u; r < u.rows; r++) {
    let i = r * u.n + j;
    if (u.useMask != 0u && $mask[r] == 0) { $dX[u.dxOff + i] = 0.0; }
    else if (u.training == 0u) { $dX[u.dxOff + i] = $dY[u.dyOff + i] * g * rsd; }
    else { $dX[u.dxOff + i] = rsd * ($dY[u.dyOff + i] * g - m1 - $xh[u.xhOff + i] * m2); }
  }`,
  },
  // weight norm, one workgroup per row: w = g v / ||v||; backward dg = dW·v / ||v||, dv += (g/n) dW - (g dg / n²) v, dW = 0
  wnFwd: {
    args: ['g', 'v', 'w', 'nrm'], writes: ['w', 'nrm'], params: ['rows', 'cols'], wg: 64,
    decls: `var<workgroup> red: array<f32, 64>;`,
    body: `let i = wid.y * nwg.x + wid.x; if (i >= u.rows) { return; } let k = lid.x; let o = i * u.cols;
  var s = 0.0; for (var j = k; j < u.cols; j += 64u) { let x = $v[o + j]; s += x * x; }
  red[k] = s; workgroupBarrier();
  for (var q = 32u; q > 0u; q >>= 1u) { if (k < q) { red[k] = red[k] + red[k + q]; } workgroupBarrier(); }
  let n = sqrt(red[0]); let a = $g[i] / n;
  if (k == 0u) { $nrm[i] = n; }
  for (var j = k; j < u.cols; j += 64u) { $w[o + j] = a * $v[o + j]; }`,
  },
  wnBwd: {
    args: ['g', 'v', 'nrm', 'dw', 'dg', 'dv'], writes: ['dw', 'dg', 'dv'], params: ['rows', 'cols'], wg: 64,
    decls: `var<workgroup> red: array<f32, 64>;`,
    body: `let i = wid.y * nwg.x + wid.x; if (i >= u.rows) { return; } let k = lid.x; let o = i * u.cols;
  var s = 0.0; for (var j = k; j < u.cols; j += 64u) { s += $dw[o + j] * $v[o + j]; }
  red[k] = s; workgroupBarrier();
  for (var q = 32u; q > 0u; q >>= 1u) { if (k < q) { red[k] = red[k] + red[k + q]; } workgroupBarrier(); }
  let n = $nrm[i]; let gi = $g[i]; let dgi = red[0] / n;
  if (k == 0u) { $dg[i] = $dg[i] + dgi; }
  let a = gi / n; let b = gi * dgi / (n * n);
  for (var j = k; j < u.cols; j += 64u) { $dv[o + j] = $dv[o + j] + a * $dw[o + j] - b * $v[o + j]; $dw[o + j] = 0.0; }`,
  },
  // batch-1 sampling on the device (sampleOnDevice): ids live in a float buffer (exact below 2^24)
  gemv: { // y[yOff + r] (+)= W[r, :] · x[base : base + cols] (+ b[r]); 8 rows per workgroup, 32 lanes per row
    args: ['W', 'x', 'b', 'y', 'ids'], writes: ['y'],
    params: ['rows', 'cols', 'xOff', 'useId', 'idSlot', 'yOff', 'acc', 'hasBias'], wg: 256,
    decls: `var<workgroup> red: array<f32, 256>;`,
    body: `let row = (wid.y * nwg.x + wid.x) * 8u + lid.x / 32u; let lane = lid.x % 32u;
  var base = u.xOff; if (u.useId != 0u) { base = u32($ids[u.idSlot]) * u.cols; }
  var s = 0.0;
  if (row < u.rows) { let w = row * u.cols; for (var k = lane; k < u.cols; k += 32u) { s = fma($W[w + k], $x[base + k], s); } }
  red[lid.x] = s; workgroupBarrier();
  for (var q = 16u; q > 0u; q >>= 1u) { if (lane < q) { red[lid.x] = red[lid.x] + red[lid.x + q]; } workgroupBarrier(); }
  if (lane == 0u && row < u.rows) {
    var v = red[lid.x];
    if (u.hasBias != 0u) { v += $b[row]; }
    if (u.acc != 0u) { v += $y[u.yOff + row]; }
    $y[u.yOff + row] = v;
  }`,
  },
  drawToken: { // ids[outSlot] = the token drawn from softmax(logits / T) with uniform U[uSlot] (as sample.ts draws)
    // 256 threads: the max and the exponentials in parallel, then one thread walks them in order
    args: ['L', 'U', 'ids'], writes: ['ids'], params: ['V', 'uSlot', 'outSlot', 'invT'], floats: ['invT'], wg: 256,
    decls: `var<workgroup> red: array<f32, 256>;\nvar<workgroup> ex: array<f32, 3072>;`,
    body: `let k = lid.x; var mx = -3.4e38; for (var j = k; j < u.V; j += 256u) { mx = max(mx, $L[j]); }
  red[k] = mx; workgroupBarrier();
  for (var q = 128u; q > 0u; q >>= 1u) { if (k < q) { red[k] = max(red[k], red[k + q]); } workgroupBarrier(); }
  mx = red[0];
  let cached = u.V <= 3072u; // 13 KB of workgroup memory with red: under the default 16 KB limit
  if (cached) { for (var j = k; j < u.V; j += 256u) { ex[j] = exp(($L[j] - mx) * u.invT); } }
  workgroupBarrier();
  if (k != 0u) { return; }
  var sum = 0.0;
  if (cached) { for (var j = 0u; j < u.V; j++) { sum += ex[j]; } }
  else { for (var j = 0u; j < u.V; j++) { sum += exp(($L[j] - mx) * u.invT); } }
  var x = $U[u.uSlot] * sum; var id = u.V - 1u;
  if (cached) { for (var j = 0u; j < u.V; j++) { x -= ex[j]; if (x < 0.0) { id = j; break; } } }
  else { for (var j = 0u; j < u.V; j++) { x -= exp(($L[j] - mx) * u.invT); if (x < 0.0) { id = j; break; } } }
  $ids[u.outSlot] = f32(id);`,
  },
  // batch norm population statistics: pop = (1 - mom) pop + mom * stat * unb  (one call per statistic)
  ema: {
    args: ['stat', 'pop'], writes: ['pop'], params: ['n', 'popOff', 'keep', 'mom'], floats: ['keep', 'mom'], wg: EW,
    body: `if (gid >= u.n) { return; } $pop[u.popOff + gid] = u.keep * $pop[u.popOff + gid] + u.mom * $stat[gid];`,
  },
};

/**
 * Tile and split-K of a multiply: the largest of `tiles` that still gives the device >= 128 workgroups (a
 * wave on a GPU of ~128 multiprocessors), else the smallest; K split (partial tiles summed by splitKReduce)
 * while there are fewer than ~256 workgroups and every split keeps at least 256 of K. The recurrent step's
 * dh = dgates · W_hh ([B, 4H] x [4H, H], K = 4H) is the case. 128x128 tiles (8x8 outputs per thread) serve
 * the big multiplies (input projections over all steps, weight gradients); the step multiplies get 64 or 32.
 */
export function gemmShape(M: number, N: number, K: number, tiles: readonly number[] = GEMM_TILES): { T: number; S: number; kLen: number } {
  const count = (t: number): number => Math.ceil(M / t) * Math.ceil(N / t);
  let T = 0, smallest = Infinity; // in any order, and nothing allocated (this runs for every multiply)
  for (const t of tiles) { if (t > T && count(t) >= 128) T = t; smallest = Math.min(smallest, t); }
  if (T === 0) T = smallest;
  let S = 1;
  while (S < 16 && count(T) * S < 256 && K / (S * 2) >= 256) S *= 2;
  const kLen = Math.ceil(Math.ceil(K / S) / 16) * 16;
  return { T, S: Math.ceil(K / kLen) || 1, kLen: S === 1 ? Math.max(K, 1) : kLen };
}

/** The gemm tiles to use: the option, else RNNKIT_GEMM_TILES=64,32 (say; for tuning on a new GPU), else all. */
function gemmTilesFrom(opt: number[] | undefined): readonly number[] {
  const env = (typeof process !== 'undefined' ? process.env?.RNNKIT_GEMM_TILES : undefined) || undefined;
  const t = opt ?? env?.split(',').map(Number) ?? GEMM_TILES;
  if (!t.length || t.some((x) => !(GEMM_TILES as readonly number[]).includes(x))) {
    throw new Error(`gemm tiles ${opt ? t.join(',') : `RNNKIT_GEMM_TILES=${env}`}: expected a comma-separated list of ${GEMM_TILES.join(', ')}`);
  }
  return t;
}

function isBuf(a: Arg): a is Buf {
  return ArrayBuffer.isView(a);
}

export interface WebGPUBackendOptions {
  /** Label shown by `name` details (adapter description). */
  adapterInfo?: string;
  /** Anything that must stay reachable while the device lives (the `webgpu` package's create() result). */
  keepAlive?: unknown;
  /** The gemm tile sizes to choose from (default all of GEMM_TILES, or RNNKIT_GEMM_TILES). */
  gemmTiles?: number[];
}

export class WebGPUBackend implements Backend {
  readonly name = 'webgpu';
  readonly dtype = 'float32' as const;
  readonly threads = 1;
  readonly deferred = true;
  readonly adapterInfo: string;
  private readonly keepAlive: unknown;
  private entries = new WeakMap<Buf, Entry>();
  private nextId = 1;
  private pipelines = new Map<string, { pipeline: GPUComputePipeline; layout: { key: string; bgl: GPUBindGroupLayout } }>();
  private layouts = new Map<string, { key: string; bgl: GPUBindGroupLayout; pl: GPUPipelineLayout }>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private ring: GPUBuffer;
  private ringHost = new ArrayBuffer(PARAM_SLOT * RING);
  private ringU32 = new Uint32Array(this.ringHost);
  private ringF32 = new Float32Array(this.ringHost);
  private used = 0;
  /** Buffers to destroy once the current submission is made (staging, transient inputs). */
  private transient: GPUBuffer[] = [];
  private rowLoss: Buf;
  private lossSlots: Buf;
  private lossSpare: Buf;
  private lossCount = 0;
  private clipPart: Buf;
  private splitBuf: Buf;
  private rowPart: Buf;
  private clipScalars: Buf;
  private lost: string | null = null;
  /** The gemm tile sizes gemmShape chooses from (settable, for tuning: bench --kernels). */
  gemmTiles: readonly number[];

  private static open = 0;

  constructor(readonly device: GPUDevice, opts: WebGPUBackendOptions = {}) {
    WebGPUBackend.open++;
    this.adapterInfo = opts.adapterInfo ?? 'WebGPU';
    this.keepAlive = opts.keepAlive;
    this.gemmTiles = gemmTilesFrom(opts.gemmTiles);
    this.ring = device.createBuffer({ size: PARAM_SLOT * RING, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.rowLoss = this.alloc(0);
    this.lossSlots = this.alloc(1024);
    this.lossSpare = this.alloc(1024);
    this.clipPart = this.alloc(0);
    this.splitBuf = this.alloc(0);
    this.rowPart = this.alloc(0);
    this.clipScalars = this.alloc(4);
    void device.lost.then((info) => { this.lost = `WebGPU device lost: ${info.message}`; });
  }

  // ---- buffers ---------------------------------------------------------------------------------------

  alloc(n: number): Buf {
    const host = new Float32Array(n);
    const max = this.device.limits.maxStorageBufferBindingSize;
    if (n * 4 > max) {
      const mib = (b: number): string => (b / 2 ** 20).toFixed(1);
      throw new Error(`webgpu: a buffer of ${n} floats (${mib(n * 4)} MiB) is over this device's maxStorageBufferBindingSize `
        + `(${mib(max)} MiB, ${this.adapterInfo.split(' (')[0]}): use a smaller batch x steps or hidden size`);
    }
    const gpu = this.device.createBuffer({
      size: Math.max(16, Math.ceil((n * 4) / 16) * 16),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    const e: Entry = { id: this.nextId++, gpu, n, state: HOST };
    this.entries.set(host, e);
    this.hosts.set(e, new WeakRef(host));
    this.finalizer.register(host, e, host);
    return host;
  }

  free(buf: Buf): void {
    const e = this.entries.get(buf);
    if (!e) return;
    this.finalizer.unregister(buf);
    this.entries.delete(buf);
    this.release(e);
  }

  private release(e: Entry): void {
    if (!this.hosts.delete(e)) return;
    // plans naming a freed buffer are never found again (ids are not reused): clear them now and then
    if (++this.freedSinceClear > 256) { this.plans.clear(); this.freedSinceClear = 0; }
    this.transient.push(e.gpu); // destroyed after the submission that may still use it
  }

  /** Buffers the program dropped without free(): their device memory goes when the host array is collected. */
  private finalizer = new FinalizationRegistry<Entry>((e) => this.release(e));

  /** The entry of a buffer; `arg` names the kernel argument in the error (the message is built only then). */
  private entry(buf: Buf, what: string, arg?: string): Entry {
    const e = this.entries.get(buf);
    if (!e) throw new Error(`webgpu: ${what}${arg ? `(${arg})` : ''}: the buffer was not allocated by this backend (or was freed)`);
    return e;
  }

  /** The host wrote into buf: upload it before its next use on the device. */
  hostWrote(buf: Buf): void {
    const e = this.entries.get(buf);
    if (e) e.state = HOST;
  }

  private endPass(): void {
    if (this.pass) { this.pass.end(); this.pass = null; }
  }

  private enc(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  private upload(host: Buf, e: Entry): void {
    const bytes = Math.ceil((e.n * 4) / 4) * 4;
    if (bytes > 0) {
      const staging = this.device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
      new Float32Array(staging.getMappedRange(), 0, e.n).set(host as Float32Array);
      staging.unmap();
      this.endPass();
      this.enc().copyBufferToBuffer(staging, 0, e.gpu, 0, Math.ceil(bytes / 4) * 4);
      this.transient.push(staging);
    }
    e.state = BOTH;
  }

  private intBuffer(data: Int32Array | Uint32Array): GPUBuffer {
    const n = Math.max(4, data.length);
    const b = this.device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
    new Int32Array(b.getMappedRange()).set(data);
    b.unmap();
    this.transient.push(b);
    return b;
  }

  // ---- dispatch --------------------------------------------------------------------------------------

  private layout(writable: boolean[], isInt: boolean[]): { key: string; bgl: GPUBindGroupLayout; pl: GPUPipelineLayout } {
    const key = writable.map((w, i) => (w ? 'w' : 'r') + (isInt[i] ? 'i' : 'f')).join('');
    let l = this.layouts.get(key);
    if (l) return l;
    const bgl = this.device.createBindGroupLayout({
      entries: [
        { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true } },
        ...writable.map((w, i) => ({ binding: i + 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: (w ? 'storage' : 'read-only-storage') as GPUBufferBindingType } })),
      ],
    });
    l = { key, bgl, pl: this.device.createPipelineLayout({ bindGroupLayouts: [bgl] }) };
    this.layouts.set(key, l);
    return l;
  }

  private pipeline(name: string, pattern: number[], nBind: number): { pipeline: GPUComputePipeline; layout: { key: string; bgl: GPUBindGroupLayout } } {
    const key = `${name}:${pattern.join(',')}`;
    let p = this.pipelines.get(key);
    if (p) return p;
    const def = K[name];
    const writable: boolean[] = new Array(nBind).fill(false), isInt: boolean[] = new Array(nBind).fill(false);
    def.args.forEach((a, i) => {
      if (def.writes.includes(a)) writable[pattern[i]] = true;
      if (def.ints?.includes(a)) isInt[pattern[i]] = true;
    });
    let body = def.body, decls = def.decls ?? '';
    def.args.forEach((a, i) => {
      const re = new RegExp(`\\$${a}\\b`, 'g');
      body = body.replace(re, `b${pattern[i]}`);
      decls = decls.replace(re, `b${pattern[i]}`);
    });
    const fields = def.params.map((q) => `${q}: ${def.floats?.includes(q) ? 'f32' : 'u32'}`).join(', ');
    const binds = Array.from({ length: nBind }, (_, b) =>
      `@group(0) @binding(${b + 1}) var<storage, ${writable[b] ? 'read_write' : 'read'}> b${b}: array<${isInt[b] ? 'i32' : 'f32'}>;`).join('\n');
    const wg = typeof def.wg === 'number' ? `${def.wg}` : def.wg;
    const code = `${WGSL_HELPERS}
struct P { ${fields} }
@group(0) @binding(0) var<uniform> u: P;
${binds}
${decls}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let gid = (wid.y * nwg.x + wid.x) * ${typeof def.wg === 'number' ? def.wg : 1}u + lid.x;
  ${body}
}`;
    const layout = this.layout(writable, isInt);
    const module = this.device.createShaderModule({ code, label: key });
    const pipeline = this.device.createComputePipeline({ layout: layout.pl, compute: { module, entryPoint: 'main' }, label: key });
    p = { pipeline, layout };
    this.pipelines.set(key, p);
    return p;
  }

  /**
   * Record one dispatch of kernel `name` over `args` with uniform `params` (in the kernel's order), on a
   * grid of `groups` x `groupsY` workgroups (more than 65535 in x are folded into y; kernels index
   * workgroups as wid.y * nwg.x + wid.x).
   */
  private run(name: string, args: Arg[], params: number[], groups: number, groupsY = 1, groupsZ = 1): void {
    if (this.lost) throw new Error(this.lost);
    const def = K[name], meta = this.meta(name), es = this.argEntries;
    // entries, uploads of host-written buffers, and the plan (pipeline + bind group) found by the buffers' ids
    let node = this.plans.get(name), cacheable = true;
    if (!node) this.plans.set(name, (node = { next: new Map(), plan: null }));
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (isBuf(a)) {
        const e = this.entry(a, name, def.args[i]);
        if (e.state === HOST) this.upload(a, e);
        if (meta.writes[i]) e.state = GPU;
        es[i] = e;
        if (cacheable) {
          let n: PlanNode | undefined = node!.next.get(e.id);
          if (!n) node!.next.set(e.id, (n = { next: new Map(), plan: null }));
          node = n;
        }
      } else { es[i] = null; cacheable = false; }
    }
    let plan = cacheable ? node!.plan : null;
    if (!plan) {
      // one binding per distinct buffer
      const uniq: GPUBuffer[] = [], pattern: number[] = [];
      args.forEach((a, i) => {
        const gpu = es[i] ? es[i]!.gpu : this.intBuffer((a as { ints: Int32Array | Uint32Array }).ints);
        let k = uniq.indexOf(gpu);
        if (k < 0) { k = uniq.length; uniq.push(gpu); }
        pattern.push(k);
      });
      const { pipeline, layout } = this.pipeline(name, pattern, uniq.length);
      // bind groups depend on the layout and the buffers only (the parameters come by dynamic offset)
      const bindGroup = this.device.createBindGroup({
        layout: layout.bgl,
        entries: [{ binding: 0, resource: { buffer: this.ring, offset: 0, size: PARAM_SLOT } },
          ...uniq.map((b, i) => ({ binding: i + 1, resource: { buffer: b } }))],
      });
      plan = { pipeline, bindGroup };
      if (cacheable) node!.plan = plan;
    }
    if (this.used === RING) this.flush();
    const slot = this.used++, base = (slot * PARAM_SLOT) / 4;
    for (let i = 0; i < params.length; i++) {
      if (meta.floats[i]) this.ringF32[base + i] = params[i];
      else this.ringU32[base + i] = params[i] >>> 0;
    }
    if (!this.pass) { this.pass = this.enc().beginComputePass(); this.lastPipeline = null; }
    if (plan.pipeline !== this.lastPipeline) { this.pass.setPipeline(plan.pipeline); this.lastPipeline = plan.pipeline; }
    this.offset[0] = slot * PARAM_SLOT;
    this.pass.setBindGroup(0, plan.bindGroup, this.offset, 0, 1);
    let gx = groups, gy = groupsY;
    if (gx > 65535) { gy = Math.ceil(gx / 65535) * gy; gx = 65535; }
    this.pass.dispatchWorkgroups(gx, gy, groupsZ);
  }

  // Per-dispatch bookkeeping without allocation: kernel metadata as arrays, the plans (pipeline and bind
  // group) in a tree keyed by the kernel and its buffers' ids (ids are never reused; the tree is cleared now
  // and then as buffers are freed), the dynamic offset in a reused array.
  private metas = new Map<string, { writes: boolean[]; floats: boolean[] }>();
  private meta(name: string): { writes: boolean[]; floats: boolean[] } {
    let m = this.metas.get(name);
    if (!m) {
      const d = K[name];
      m = { writes: d.args.map((a) => d.writes.includes(a)), floats: d.params.map((q) => !!d.floats?.includes(q)) };
      this.metas.set(name, m);
    }
    return m;
  }
  private plans = new Map<string, PlanNode>();
  private argEntries: (Entry | null)[] = new Array(16).fill(null);
  private offset = new Uint32Array(1);
  private lastPipeline: GPUComputePipeline | null = null;
  private freedSinceClear = 0;

  /** Submit everything recorded so far. */
  flush(): void {
    this.endPass();
    if (!this.encoder && this.used === 0) { this.destroyTransient(); return; }
    if (this.used > 0) this.device.queue.writeBuffer(this.ring, 0, this.ringHost, 0, this.used * PARAM_SLOT);
    const cb = this.enc().finish();
    this.encoder = null;
    this.device.queue.submit([cb]);
    this.used = 0;
    this.destroyTransient();
  }

  private destroyTransient(): void {
    for (const b of this.transient) b.destroy();
    this.transient = [];
  }

  /** Wait until the device has finished everything submitted. */
  async finish(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    if (this.lost) throw new Error(this.lost);
  }

  /**
   * Bring the device's contents of `bufs` (default: every buffer the device wrote) to their host arrays.
   * Afterwards the host arrays are the truth: host writes are picked up at the next use.
   */
  async syncHost(bufs?: Buf[]): Promise<void> {
    const list: [Buf | null, Entry][] = [];
    if (bufs) for (const b of bufs) { const e = this.entry(b, 'syncHost'); list.push([b, e]); }
    const pending = bufs ? list : [...this.hosts.keys()].map((e) => [null, e] as [Buf | null, Entry]);
    const todo = pending.filter(([, e]) => e.state === GPU && e.n > 0);
    if (todo.length === 0) { this.flush(); for (const [, e] of pending) e.state = HOST; return; }
    this.endPass();
    const reads = todo.map(([, e]) => {
      const bytes = e.n * 4;
      const rb = this.device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      this.enc().copyBufferToBuffer(e.gpu, 0, rb, 0, Math.ceil(bytes / 4) * 4);
      return rb;
    });
    this.flush();
    await Promise.all(reads.map((rb) => rb.mapAsync(GPUMapMode.READ)));
    if (this.lost) throw new Error(this.lost);
    // host arrays of the entries: found through the WeakMap's keys we were given, or by scanning
    const hostOf = bufs ? new Map(list.map(([b, e]) => [e, b!])) : this.hostArrays();
    todo.forEach(([, e], i) => {
      const host = hostOf.get(e);
      if (host) (host as Float32Array).set(new Float32Array(reads[i].getMappedRange(), 0, e.n));
      reads[i].unmap(); reads[i].destroy();
    });
    for (const [, e] of pending) e.state = HOST;
  }

  // The live buffers. Entries do not point back to their host arrays (that would keep dropped arrays alive);
  // a full sync needs them, so each entry holds its array weakly here (the finalizer releases dropped ones).
  private hosts = new Map<Entry, WeakRef<Buf>>();
  private hostArrays(): Map<Entry, Buf> {
    const m = new Map<Entry, Buf>();
    for (const [e, r] of this.hosts) { const b = r.deref(); if (b) m.set(e, b); }
    return m;
  }

  /**
   * The summed loss of the softmaxCrossEntropy calls since the last takeLoss (they returned NaN). Submits the
   * work recorded so far at once; the losses go to a second buffer meanwhile, so the host can record the
   * next step while this one's loss is on its way back.
   */
  takeLoss(): Promise<number> {
    const n = this.lossCount, buf = this.lossSlots;
    this.lossCount = 0;
    [this.lossSlots, this.lossSpare] = [this.lossSpare, this.lossSlots];
    if (n === 0) { this.flush(); return Promise.resolve(0); }
    return this.syncHost([buf]).then(() => {
      let s = 0;
      for (let i = 0; i < n; i++) s += buf[i];
      return s;
    });
  }

  private disposed = false;

  /** The gradient norm of the last clipGradNorm (before clipping), read back from the device. */
  async clipNorm(): Promise<number> {
    await this.syncHost([this.clipScalars]);
    return this.clipScalars[0];
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.flush();
    for (const e of this.hosts.keys()) e.gpu.destroy();
    this.hosts.clear();
    this.ring.destroy();
    this.device.destroy();
    void this.keepAlive;
    // the last backend lets Dawn's instance go (else it keeps Node's event loop alive)
    if (--WebGPUBackend.open === 0) releaseWebGPU();
  }

  // ---- kernels ---------------------------------------------------------------------------------------

  gemm(transA: boolean, transB: boolean, M: number, N: number, K_: number,
    A: Buf, aOff: number, lda: number, B: Buf, bOff: number, ldb: number,
    beta: 0 | 1, C: Buf, cOff: number, ldc: number): void {
    if (M === 0 || N === 0) return;
    const { T, S, kLen } = gemmShape(M, N, K_, this.gemmTiles);
    const name = `gemm${T}_${transA ? 't' : 'n'}${transB ? 't' : 'n'}`;
    if (S === 1) {
      this.run(name, [A, B, C], [M, N, K_, lda, ldb, ldc, aOff, bOff, cOff, beta, kLen, 0], Math.ceil(N / T), Math.ceil(M / T));
      return;
    }
    if (this.splitBuf.length < S * M * N) { this.free(this.splitBuf); this.splitBuf = this.alloc(S * M * N); }
    this.run(name, [A, B, this.splitBuf], [M, N, K_, lda, ldb, N, aOff, bOff, 0, 0, kLen, 1], Math.ceil(N / T), Math.ceil(M / T), S);
    this.run('splitKReduce', [this.splitBuf, C], [M, N, S, ldc, cOff, beta], Math.ceil((M * N) / EW));
  }

  addRowVector(rows: number, n: number, X: Buf, xOff: number, b: Buf, bOff: number, Y: Buf, yOff: number): void {
    const t = rows * n;
    if (t) this.run('addRowVector', [X, b, Y], [t, n, xOff, bOff, yOff], Math.ceil(t / EW));
  }
  sumRows(rows: number, n: number, dY: Buf, dyOff: number, db: Buf, dbOff: number): void {
    if (!rows || !n) return;
    if (rows <= 512) { this.run('sumRows', [dY, db], [rows, n, dyOff, dbOff], Math.ceil(n / 64)); return; }
    // many rows (bias gradients over T*B): chunks of 256 rows in parallel, then the chunks in order
    const chunks = Math.ceil(rows / 256), total = chunks * n;
    if (this.rowPart.length < total) { this.free(this.rowPart); this.rowPart = this.alloc(total); }
    this.run('sumRowsPartial', [dY, this.rowPart], [rows, n, dyOff, 256, total], Math.ceil(total / EW));
    this.run('sumRows', [this.rowPart, db], [chunks, n, 0, dbOff], Math.ceil(n / 64));
  }

  lstmCellForward(B: number, H: number, gates: Buf, gOff: number, cPrev: Buf, cpOff: number, c: Buf, cOff: number, h: Buf, hOff: number): void {
    const n = B * H;
    if (n) this.run('lstmFwd', [gates, cPrev, c, h], [n, H, gOff, cpOff, cOff, hOff], Math.ceil(n / EW));
  }
  lstmCellBackward(B: number, H: number, gates: Buf, gOff: number, cPrev: Buf, cpOff: number, c: Buf, cOff: number,
    dh: Buf, dhOff: number, dc: Buf, dcOff: number, dgates: Buf, dgOff: number): void {
    const n = B * H;
    if (n) this.run('lstmBwd', [gates, cPrev, c, dh, dc, dgates], [n, H, gOff, cpOff, cOff, dhOff, dcOff, dgOff], Math.ceil(n / EW));
  }
  gruCellForward(B: number, H: number, xp: Buf, xpOff: number, hp: Buf, hpOff: number, hPrev: Buf, hpvOff: number,
    act: Buf, aOff: number, h: Buf, hOff: number): void {
    const n = B * H;
    if (n) this.run('gruFwd', [xp, hp, hPrev, act, h], [n, H, xpOff, hpOff, hpvOff, aOff, hOff], Math.ceil(n / EW));
  }
  gruCellBackward(B: number, H: number, act: Buf, aOff: number, hp: Buf, hpOff: number, hPrev: Buf, hpvOff: number,
    dh: Buf, dhOff: number, dxp: Buf, dxpOff: number, dhp: Buf, dhpOff: number, dhPrev: Buf, dhPrevOff: number): void {
    const n = B * H;
    if (n) this.run('gruBwd', [act, hp, hPrev, dh, dxp, dhp, dhPrev], [n, H, aOff, hpOff, hpvOff, dhOff, dxpOff, dhpOff, dhPrevOff], Math.ceil(n / EW));
  }
  rnnCellForward(act: Activation, B: number, H: number, a: Buf, aOff: number): void {
    const n = B * H;
    if (n) this.run(act === 'tanh' ? 'rnnFwdTanh' : 'rnnFwdRelu', [a], [n, aOff], Math.ceil(n / EW));
  }
  rnnCellBackward(act: Activation, B: number, H: number, h: Buf, hOff: number, dh: Buf, dhOff: number, da: Buf, daOff: number): void {
    const n = B * H;
    if (n) this.run(act === 'tanh' ? 'rnnBwdTanh' : 'rnnBwdRelu', [h, dh, da], [n, hOff, dhOff, daOff], Math.ceil(n / EW));
  }

  embeddingForward(n: number, dim: number, ids: Int32Array, table: Buf, out: Buf, outOff: number): void {
    const t = n * dim, rows = this.entry(table, 'embeddingForward').n / dim;
    for (let r = 0; r < n; r++) {
      if (!(ids[r] >= 0 && ids[r] < rows)) throw new Error(`embedding: id ${ids[r]} at ${r} is outside [0, ${rows})`);
    }
    if (t) this.run('embFwd', [{ ints: ids.subarray(0, n) }, table, out], [t, dim, outOff], Math.ceil(t / EW));
  }
  embeddingBackward(n: number, dim: number, ids: Int32Array, dOut: Buf, dOutOff: number, dTable: Buf): void {
    const total = this.entry(dTable, 'embeddingBackward').n;
    if (n && total) this.run('embBwd', [{ ints: ids.subarray(0, n) }, dOut, dTable], [total, n, dim, dOutOff], Math.ceil(total / EW));
  }

  softmaxCrossEntropy(n: number, V: number, logits: Buf, lOff: number, targets: Int32Array,
    dLogits: Buf | null, dOff: number, scale: number): number {
    if (n === 0) return 0;
    if (this.rowLoss.length < n) { this.free(this.rowLoss); this.rowLoss = this.alloc(n); }
    if (this.lossCount === this.lossSlots.length) {
      // more losses than slots before a takeLoss (e.g. a long evaluation): twice the slots, the old ones copied
      const old = this.lossSlots;
      this.lossSlots = this.alloc(old.length * 2);
      this.copy(old.length, old, 0, this.lossSlots, 0);
      this.free(old);
    }
    const dl = dLogits ?? this.rowLoss;
    this.run('softmaxCE', [logits, { ints: targets.subarray(0, n) }, dl, this.rowLoss],
      [n, V, lOff, dOff, dLogits ? 1 : 0, scale], n);
    this.run('reduceLoss', [this.rowLoss, this.lossSlots], [n, this.lossCount++], 1);
    return NaN;
  }

  mul(n: number, a: Buf, aOff: number, b: Buf, bOff: number, y: Buf, yOff: number): void {
    if (n) this.run('mul', [a, b, y], [n, aOff, bOff, yOff], Math.ceil(n / EW));
  }
  add(n: number, a: Buf, aOff: number, b: Buf, bOff: number, y: Buf, yOff: number): void {
    if (n) this.run('add', [a, b, y], [n, aOff, bOff, yOff], Math.ceil(n / EW));
  }
  addTo(n: number, x: Buf, xOff: number, y: Buf, yOff: number): void {
    if (n) this.run('addTo', [x, y], [n, xOff, yOff], Math.ceil(n / EW));
  }
  scale(n: number, s: number, x: Buf, xOff: number): void {
    if (n) this.run('scale', [x], [n, xOff, s], Math.ceil(n / EW));
  }
  sumSquares(_n: number, _x: Buf, _xOff: number): number {
    throw new Error('webgpu: sumSquares would need a read from the device; use clipGradNorm (on the device) or syncHost first');
  }
  fill(n: number, v: number, x: Buf, xOff: number): void {
    if (n) this.run('fill', [x], [n, xOff, v], Math.ceil(n / EW));
  }
  copy(n: number, x: Buf, xOff: number, y: Buf, yOff: number): void {
    if (n) this.run('copy2d', [x, y], [n, n, xOff, 0, yOff, 0], Math.ceil(n / EW));
  }
  copy2d(rows: number, n: number, X: Buf, xOff: number, ldx: number, Y: Buf, yOff: number, ldy: number): void {
    const t = rows * n;
    if (t) this.run('copy2d', [X, Y], [t, n, xOff, ldx, yOff, ldy], Math.ceil(t / EW));
  }

  adam(n: number, p: Buf, g: Buf, m: Buf, v: Buf, lr: number, b1: number, b2: number, eps: number,
    weightDecay: number, step: number): void {
    const bc1 = 1 - Math.pow(b1, step), bc2 = 1 - Math.pow(b2, step);
    if (n) this.run('adam', [p, g, m, v], [n, b1, b2, eps, weightDecay, lr / bc1, Math.sqrt(bc2)], Math.ceil(n / EW));
  }
  sgd(n: number, p: Buf, g: Buf, mom: Buf | null, lr: number, momentum: number, weightDecay: number): void {
    if (!n) return;
    if (mom && momentum > 0) this.run('sgdMomentum', [p, g, mom], [n, lr, momentum, weightDecay], Math.ceil(n / EW));
    else this.run('sgd', [p, g], [n, lr, weightDecay], Math.ceil(n / EW));
  }

  /** Global gradient-norm clipping on the device (torch.nn.utils.clip_grad_norm_); the norm stays there (NaN). */
  clipGradNorm(grads: Buf[], sizes: number[], maxNorm: number): number {
    const CH = 8192;
    const parts = sizes.map((n) => Math.max(1, Math.ceil(n / CH)));
    const total = parts.reduce((a, b) => a + b, 0);
    if (this.clipPart.length < total) { this.free(this.clipPart); this.clipPart = this.alloc(total); }
    let off = 0;
    grads.forEach((g, i) => {
      this.run('sumSqPartial', [g, this.clipPart], [sizes[i], 0, CH, off], parts[i]);
      off += parts[i];
    });
    this.run('clipCoef', [this.clipPart, this.clipScalars], [total, maxNorm], 1);
    grads.forEach((g, i) => { if (sizes[i]) this.run('scaleBy', [g, this.clipScalars], [sizes[i], 0], Math.ceil(sizes[i] / EW)); });
    return NaN;
  }

  lstmOutput(B: number, H: number, gates: Buf, gOff: number, cn: Buf, cnOff: number, h: Buf, hOff: number): void {
    const n = B * H;
    if (n) this.run('lstmOut', [gates, cn, h], [n, H, gOff, cnOff, hOff], Math.ceil(n / EW));
  }
  lstmOutputBackward(B: number, H: number, gates: Buf, gOff: number, cn: Buf, cnOff: number, dh: Buf, dhOff: number,
    dcn: Buf, dcnOff: number, dO: Buf, dOOff: number): void {
    const n = B * H;
    if (n) this.run('lstmOutBwd', [gates, cn, dh, dcn, dO], [n, H, gOff, cnOff, dhOff, dcnOff, dOOff], Math.ceil(n / EW));
  }

  layerNormForward(rows: number, n: number, X: Buf, xOff: number, gamma: Buf, beta: Buf, gbOff: number,
    Y: Buf, yOff: number, xhat: Buf, xhOff: number, rstd: Buf, rOff: number, eps: number): void {
    if (rows && n) this.run('lnFwd', [X, gamma, beta, Y, xhat, rstd], [rows, n, xOff, gbOff, yOff, xhOff, rOff, eps], rows);
  }
  layerNormBackward(rows: number, n: number, dY: Buf, dyOff: number, xhat: Buf, xhOff: number, rstd: Buf, rOff: number,
    gamma: Buf, gbOff: number, dGamma: Buf, dBeta: Buf, dX: Buf, dxOff: number): void {
    if (!rows || !n) return;
    this.run('lnBwdParams', [dY, xhat, dGamma, dBeta], [rows, n, dyOff, xhOff, gbOff], Math.ceil(n / 64));
    this.run('lnBwd', [dY, xhat, rstd, gamma, dX], [rows, n, dyOff, xhOff, rOff, gbOff, dxOff], rows);
  }
  columnStats(rows: number, n: number, X: Buf, xOff: number, mask: Uint8Array | null, mean: Buf, variance: Buf): void {
    if (!n) return;
    this.run('colStats', [X, { ints: mask ? Int32Array.from(mask) : new Int32Array(1) }, mean, variance],
      [rows, n, xOff, mask ? 1 : 0], Math.ceil(n / 64));
  }
  normalizeColumns(rows: number, n: number, X: Buf, xOff: number, mean: Buf, variance: Buf, eps: number,
    gamma: Buf, beta: Buf, gbOff: number, Y: Buf, yOff: number, xhat: Buf, xhOff: number, rstd: Buf, rOff: number): void {
    if (!n) return;
    this.run('normCols', [X, mean, variance, gamma, beta, Y, xhat, rstd], [rows, n, xOff, eps, gbOff, yOff, xhOff, rOff], Math.ceil(n / 64));
  }
  batchNormBackward(rows: number, n: number, dY: Buf, dyOff: number, xhat: Buf, xhOff: number, rstd: Buf, rOff: number,
    gamma: Buf, gbOff: number, mask: Uint8Array | null, training: boolean, dGamma: Buf, dBeta: Buf, dX: Buf, dxOff: number): void {
    if (!n) return;
    this.run('bnBwd', [dY, xhat, rstd, gamma, { ints: mask ? Int32Array.from(mask) : new Int32Array(1) }, dGamma, dBeta, dX],
      [rows, n, dyOff, xhOff, rOff, gbOff, mask ? 1 : 0, training ? 1 : 0, dxOff], Math.ceil(n / 64));
  }
  weightNormForward(rows: number, cols: number, g: Buf, v: Buf, w: Buf, norms: Buf): void {
    if (rows) this.run('wnFwd', [g, v, w, norms], [rows, cols], rows);
  }
  weightNormBackward(rows: number, cols: number, g: Buf, v: Buf, norms: Buf, dw: Buf, dg: Buf, dv: Buf): void {
    if (rows) this.run('wnBwd', [g, v, norms, dw, dg, dv], [rows, cols], rows);
  }
  /**
   * Batch-1 sampling entirely on the device: the prime, then `uniforms.length` tokens, each drawn from
   * softmax(logits / temperature) with the next uniform (as sample.ts draws on the host). One submission,
   * one read (the ids). The state starts at zero and ends in hOut/cOut ([L, H]) when given.
   */
  async sampleOnDevice(spec: Step1Spec, prime: Int32Array, uniforms: Float32Array, temperature: number,
    hOut: Buf | null, cOut: Buf | null): Promise<Int32Array> {
    const { V, E, H, cell } = spec, L = spec.layers.length, G = cell === 'lstm' ? 4 : cell === 'gru' ? 3 : 1;
    const P = prime.length, N = uniforms.length, total = P + N;
    for (let r = 0; r < P; r++) if (!(prime[r] >= 0 && prime[r] < V)) throw new Error(`Embedding: id ${prime[r]} at position ${r} is outside [0, ${V})`);
    const ids = this.alloc(total + 1), U = this.alloc(Math.max(1, N));
    ids.set(prime); U.set(uniforms);
    const h = this.alloc(L * H), c = this.alloc(L * H), gx = this.alloc(G * H), gh = this.alloc(G * H), act = this.alloc(3 * H);
    const logits = this.alloc(V), none = this.alloc(1);
    const gemv = (W: Buf, rows: number, cols: number, x: Buf, xOff: number, idSlot: number, b: Buf | null, y: Buf, yOff: number, acc: boolean): void =>
      this.run('gemv', [W, x, b ?? none, y, ids], [rows, cols, xOff, idSlot >= 0 ? 1 : 0, Math.max(0, idSlot), yOff, acc ? 1 : 0, b ? 1 : 0], Math.ceil(rows / 8));
    for (let t = 0; t < total; t++) {
      for (let l = 0; l < L; l++) {
        const w = spec.layers[l], I = l === 0 ? E : H, hl = l * H;
        const [x, xOff, slot] = l === 0 ? [spec.embedding, 0, t] : [h, (l - 1) * H, -1];
        if (cell === 'gru') {
          gemv(w.wih, G * H, I, x, xOff, slot, w.bih, gx, 0, false);
          gemv(w.whh, G * H, H, h, hl, -1, w.bhh, gh, 0, false);
          this.gruCellForward(1, H, gx, 0, gh, 0, h, hl, act, 0, h, hl);
        } else {
          gemv(w.wih, G * H, I, x, xOff, slot, w.bih, gx, 0, false);
          gemv(w.whh, G * H, H, h, hl, -1, w.bhh, gx, 0, true);
          if (cell === 'lstm') this.lstmCellForward(1, H, gx, 0, c, hl, c, hl, h, hl);
          else { this.rnnCellForward(cell === 'rnn_relu' ? 'relu' : 'tanh', 1, H, gx, 0); this.copy(H, gx, 0, h, hl); }
        }
      }
      if (t >= P - 1 && t < total - 1) { // the logits of step t give token t + 1
        gemv(spec.decoder, V, H, h, (L - 1) * H, -1, spec.decoderBias, logits, 0, false);
        this.run('drawToken', [logits, U, ids], [V, t - (P - 1), t + 1, 1 / temperature], 1);
      }
    }
    if (hOut) this.copy(L * H, h, 0, hOut, 0);
    if (cOut && cell === 'lstm') this.copy(L * H, c, 0, cOut, 0);
    await this.syncHost([ids]);
    const out = Int32Array.from(ids.subarray(P, total));
    for (const b of [ids, U, h, c, gx, gh, act, logits, none]) this.free(b);
    return out;
  }

  /** pop[popOff + j] = keep * pop[popOff + j] + mom * stat[j] for j < n (batch norm's population statistics). */
  emaUpdate(n: number, stat: Buf, pop: Buf, popOff: number, keep: number, mom: number): void {
    if (n) this.run('ema', [stat, pop], [n, popOff, keep, mom], Math.ceil(n / EW));
  }
}

/** A WebGPU backend on the best adapter (see webgpu-device.ts for Node's Dawn and the lavapipe fallback). */
export async function createWebGPUBackend(opts: WebGPUDeviceOptions = {}): Promise<WebGPUBackend> {
  const r = await requestWebGPUDevice(opts);
  return new WebGPUBackend(r.device, { adapterInfo: r.adapterInfo, keepAlive: r.keepAlive });
}

export { releaseWebGPU };
