// The TypeScript reference backend: the specification every faster backend must match.
// Works in float32 (the default) or float64 (for finite-difference gradient checks).

import type { Activation, Backend, Buf, DType, Step1Plan, Step1Spec } from './backend.js';
import { checkStep1Spec } from './step1.js';

const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** The reference backend's batch-1 inference plan: copies of the weights, T0, the state (two sets, ping-pong). */
interface JsStep1Plan extends Step1Plan {
  owner: JsBackend;
  live: boolean;
  G: number;
  L: number;
  /** T0 [V, G*H] = embedding · W_ih0^T + b_ih0 + b_hh0 (GRU's n part: + b_in0 only). */
  table: Buf;
  /** Per layer (index 0 unused: the table replaces it): W_ih [G*H, H]. */
  wih: Buf[];
  whh: Buf[];
  /** Per layer: the biases added on the x side, b_ih + b_hh (GRU's n part: b_in). [G*H] */
  bx: Buf[];
  /** GRU: b_hn per layer [H]. */
  bhn: Buf[];
  dec: Buf;
  decBias: Buf | null;
  /** h[s] and c[s] [L, H] for s = 0, 1: state `cur` is the current one. */
  h: Buf[];
  c: Buf[];
  cur: number;
  /** Scratch: x-side and h-side pre-activations [G*H]. */
  px: Buf;
  ph: Buf;
  logits: Buf;
}

// Block sizes of the reference multiply: small enough that a K-panel of B stays in L1/L2.
const KB = 128;
const NB = 256;

export class JsBackend implements Backend {
  readonly name = 'js';
  readonly threads = 1;
  constructor(readonly dtype: DType = 'float32') {}

  alloc(n: number): Buf {
    return this.dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
  }
  free(_buf: Buf): void {}
  dispose(): void {}

  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number,
    A: Buf, aOff: number, lda: number, B: Buf, bOff: number, ldb: number,
    beta: 0 | 1, C: Buf, cOff: number, ldc: number): void {
    if (beta === 0) for (let i = 0; i < M; i++) C.fill(0, cOff + i * ldc, cOff + i * ldc + N);
    if (M === 0 || N === 0 || K === 0) return;
    // A element (i,k): transA ? A[k*lda+i] : A[i*lda+k]; B element (k,j): transB ? B[j*ldb+k] : B[k*ldb+j].
    const sai = transA ? 1 : lda, sak = transA ? lda : 1;
    if (!transB) {
      // i-k-j order: the inner loop runs along contiguous rows of B and C.
      for (let k0 = 0; k0 < K; k0 += KB) {
        const k1 = Math.min(K, k0 + KB);
        for (let j0 = 0; j0 < N; j0 += NB) {
          const j1 = Math.min(N, j0 + NB);
          for (let i = 0; i < M; i++) {
            const c = cOff + i * ldc;
            for (let k = k0; k < k1; k++) {
              const a = A[aOff + i * sai + k * sak];
              if (a === 0) continue;
              const b = bOff + k * ldb;
              for (let j = j0; j < j1; j++) C[c + j] += a * B[b + j];
            }
          }
        }
      }
    } else {
      // B^T: rows of B are columns of op(B); dot products along contiguous rows, 4 columns at a time.
      for (let k0 = 0; k0 < K; k0 += KB) {
        const k1 = Math.min(K, k0 + KB);
        for (let i = 0; i < M; i++) {
          const a0 = aOff + i * sai;
          const c = cOff + i * ldc;
          let j = 0;
          for (; j + 4 <= N; j += 4) {
            const b0 = bOff + j * ldb, b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
            let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (let k = k0; k < k1; k++) {
              const a = A[a0 + k * sak];
              s0 += a * B[b0 + k]; s1 += a * B[b1 + k]; s2 += a * B[b2 + k]; s3 += a * B[b3 + k];
            }
            C[c + j] += s0; C[c + j + 1] += s1; C[c + j + 2] += s2; C[c + j + 3] += s3;
          }
          for (; j < N; j++) {
            const b0 = bOff + j * ldb;
            let s = 0;
            for (let k = k0; k < k1; k++) s += A[a0 + k * sak] * B[b0 + k];
            C[c + j] += s;
          }
        }
      }
    }
  }

  addRowVector(rows: number, n: number, X: Buf, xOff: number, b: Buf, bOff: number, Y: Buf, yOff: number): void {
    for (let r = 0; r < rows; r++) {
      const x = xOff + r * n, y = yOff + r * n;
      for (let j = 0; j < n; j++) Y[y + j] = X[x + j] + b[bOff + j];
    }
  }

  sumRows(rows: number, n: number, dY: Buf, dyOff: number, db: Buf, dbOff: number): void {
    for (let r = 0; r < rows; r++) {
      const y = dyOff + r * n;
      for (let j = 0; j < n; j++) db[dbOff + j] += dY[y + j];
    }
  }

  lstmCellForward(B: number, H: number, gates: Buf, gOff: number, cPrev: Buf, cpOff: number,
    c: Buf, cOff: number, h: Buf, hOff: number): void {
    for (let b = 0; b < B; b++) {
      const g = gOff + b * 4 * H, s = b * H;
      for (let j = 0; j < H; j++) {
        const ig = sigmoid(gates[g + j]);
        const fg = sigmoid(gates[g + H + j]);
        const gg = Math.tanh(gates[g + 2 * H + j]);
        const og = sigmoid(gates[g + 3 * H + j]);
        gates[g + j] = ig; gates[g + H + j] = fg; gates[g + 2 * H + j] = gg; gates[g + 3 * H + j] = og;
        const cv = fg * cPrev[cpOff + s + j] + ig * gg;
        c[cOff + s + j] = cv;
        h[hOff + s + j] = og * Math.tanh(cv);
      }
    }
  }

  lstmCellBackward(B: number, H: number, gates: Buf, gOff: number, cPrev: Buf, cpOff: number,
    c: Buf, cOff: number, dh: Buf, dhOff: number, dc: Buf, dcOff: number, dgates: Buf, dgOff: number): void {
    for (let b = 0; b < B; b++) {
      const g = gOff + b * 4 * H, dg = dgOff + b * 4 * H, s = b * H;
      for (let j = 0; j < H; j++) {
        const ig = gates[g + j], fg = gates[g + H + j], gg = gates[g + 2 * H + j], og = gates[g + 3 * H + j];
        const tc = Math.tanh(c[cOff + s + j]);
        const dhv = dh[dhOff + s + j];
        const dcv = dc[dcOff + s + j] + dhv * og * (1 - tc * tc);
        dgates[dg + j] = dcv * gg * ig * (1 - ig);
        dgates[dg + H + j] = dcv * cPrev[cpOff + s + j] * fg * (1 - fg);
        dgates[dg + 2 * H + j] = dcv * ig * (1 - gg * gg);
        dgates[dg + 3 * H + j] = dhv * tc * og * (1 - og);
        dc[dcOff + s + j] = dcv * fg;
      }
    }
  }

  gruCellForward(B: number, H: number, xp: Buf, xpOff: number, hp: Buf, hpOff: number,
    hPrev: Buf, hpvOff: number, act: Buf, aOff: number, h: Buf, hOff: number): void {
    for (let b = 0; b < B; b++) {
      const x = xpOff + b * 3 * H, q = hpOff + b * 3 * H, a = aOff + b * 3 * H, s = b * H;
      for (let j = 0; j < H; j++) {
        const r = sigmoid(xp[x + j] + hp[q + j]);
        const z = sigmoid(xp[x + H + j] + hp[q + H + j]);
        const n = Math.tanh(xp[x + 2 * H + j] + r * hp[q + 2 * H + j]);
        act[a + j] = r; act[a + H + j] = z; act[a + 2 * H + j] = n;
        h[hOff + s + j] = (1 - z) * n + z * hPrev[hpvOff + s + j];
      }
    }
  }

  gruCellBackward(B: number, H: number, act: Buf, aOff: number, hp: Buf, hpOff: number,
    hPrev: Buf, hpvOff: number, dh: Buf, dhOff: number,
    dxp: Buf, dxpOff: number, dhp: Buf, dhpOff: number, dhPrev: Buf, dhPrevOff: number): void {
    for (let b = 0; b < B; b++) {
      const a = aOff + b * 3 * H, q = hpOff + b * 3 * H, dx = dxpOff + b * 3 * H, dq = dhpOff + b * 3 * H, s = b * H;
      for (let j = 0; j < H; j++) {
        const r = act[a + j], z = act[a + H + j], n = act[a + 2 * H + j];
        const d = dh[dhOff + s + j];
        const dn = d * (1 - z) * (1 - n * n);
        const dz = d * (hPrev[hpvOff + s + j] - n) * z * (1 - z);
        const dr = dn * hp[q + 2 * H + j] * r * (1 - r);
        dxp[dx + j] = dr; dxp[dx + H + j] = dz; dxp[dx + 2 * H + j] = dn;
        dhp[dq + j] = dr; dhp[dq + H + j] = dz; dhp[dq + 2 * H + j] = dn * r;
        dhPrev[dhPrevOff + s + j] = d * z;
      }
    }
  }

  rnnCellForward(act: Activation, B: number, H: number, a: Buf, aOff: number): void {
    const n = B * H;
    if (act === 'tanh') for (let i = 0; i < n; i++) a[aOff + i] = Math.tanh(a[aOff + i]);
    else for (let i = 0; i < n; i++) { const v = a[aOff + i]; a[aOff + i] = v > 0 ? v : 0; }
  }

  rnnCellBackward(act: Activation, B: number, H: number, h: Buf, hOff: number, dh: Buf, dhOff: number,
    da: Buf, daOff: number): void {
    const n = B * H;
    if (act === 'tanh') for (let i = 0; i < n; i++) { const v = h[hOff + i]; da[daOff + i] = dh[dhOff + i] * (1 - v * v); }
    else for (let i = 0; i < n; i++) da[daOff + i] = h[hOff + i] > 0 ? dh[dhOff + i] : 0;
  }

  embeddingForward(n: number, dim: number, ids: Int32Array, table: Buf, out: Buf, outOff: number): void {
    for (let r = 0; r < n; r++) {
      const src = ids[r] * dim;
      out.set(table.subarray(src, src + dim), outOff + r * dim);
    }
  }

  embeddingBackward(n: number, dim: number, ids: Int32Array, dOut: Buf, dOutOff: number, dTable: Buf): void {
    for (let r = 0; r < n; r++) {
      const dst = ids[r] * dim, src = dOutOff + r * dim;
      for (let j = 0; j < dim; j++) dTable[dst + j] += dOut[src + j];
    }
  }

  softmaxCrossEntropy(n: number, V: number, logits: Buf, lOff: number, targets: Int32Array,
    dLogits: Buf | null, dOff: number, scale: number): number {
    let loss = 0;
    for (let r = 0; r < n; r++) {
      const l = lOff + r * V, t = targets[r];
      if (t < 0) {
        if (dLogits) dLogits.fill(0, dOff + r * V, dOff + (r + 1) * V);
        continue;
      }
      let mx = -Infinity;
      for (let j = 0; j < V; j++) if (logits[l + j] > mx) mx = logits[l + j];
      let sum = 0;
      for (let j = 0; j < V; j++) sum += Math.exp(logits[l + j] - mx);
      const lse = mx + Math.log(sum);
      loss += lse - logits[l + t];
      if (dLogits) {
        const d = dOff + r * V;
        for (let j = 0; j < V; j++) dLogits[d + j] = Math.exp(logits[l + j] - lse) * scale;
        dLogits[d + t] -= scale;
      }
    }
    return loss;
  }

  mul(n: number, a: Buf, aOff: number, b: Buf, bOff: number, y: Buf, yOff: number): void {
    for (let i = 0; i < n; i++) y[yOff + i] = a[aOff + i] * b[bOff + i];
  }
  add(n: number, a: Buf, aOff: number, b: Buf, bOff: number, y: Buf, yOff: number): void {
    for (let i = 0; i < n; i++) y[yOff + i] = a[aOff + i] + b[bOff + i];
  }
  addTo(n: number, x: Buf, xOff: number, y: Buf, yOff: number): void {
    for (let i = 0; i < n; i++) y[yOff + i] += x[xOff + i];
  }
  scale(n: number, s: number, x: Buf, xOff: number): void {
    for (let i = 0; i < n; i++) x[xOff + i] *= s;
  }
  sumSquares(n: number, x: Buf, xOff: number): number {
    let s = 0;
    for (let i = 0; i < n; i++) { const v = x[xOff + i]; s += v * v; }
    return s;
  }
  fill(n: number, v: number, x: Buf, xOff: number): void {
    x.fill(v, xOff, xOff + n);
  }
  copy(n: number, x: Buf, xOff: number, y: Buf, yOff: number): void {
    y.set(x.subarray(xOff, xOff + n), yOff);
  }

  copy2d(rows: number, n: number, X: Buf, xOff: number, ldx: number, Y: Buf, yOff: number, ldy: number): void {
    for (let r = 0; r < rows; r++) {
      const x = xOff + r * ldx, y = yOff + r * ldy;
      for (let j = 0; j < n; j++) Y[y + j] = X[x + j];
    }
  }

  lstmOutput(B: number, H: number, gates: Buf, gOff: number, cn: Buf, cnOff: number, h: Buf, hOff: number): void {
    for (let r = 0; r < B; r++) for (let j = 0; j < H; j++) {
      h[hOff + r * H + j] = gates[gOff + r * 4 * H + 3 * H + j] * Math.tanh(cn[cnOff + r * H + j]);
    }
  }

  lstmOutputBackward(B: number, H: number, gates: Buf, gOff: number, cn: Buf, cnOff: number, dh: Buf, dhOff: number,
    dcn: Buf, dcnOff: number, dO: Buf, dOOff: number): void {
    for (let r = 0; r < B; r++) for (let j = 0; j < H; j++) {
      const i = r * H + j, og = gates[gOff + r * 4 * H + 3 * H + j], tc = Math.tanh(cn[cnOff + i]), d = dh[dhOff + i];
      dcn[dcnOff + i] = d * og * (1 - tc * tc);
      dO[dOOff + i] = d * tc * og * (1 - og);
    }
  }

  layerNormForward(rows: number, n: number, X: Buf, xOff: number, gamma: Buf, beta: Buf, gbOff: number,
    Y: Buf, yOff: number, xhat: Buf, xhOff: number, rstd: Buf, rOff: number, eps: number): void {
    for (let r = 0; r < rows; r++) {
      const x = xOff + r * n, y = yOff + r * n, h = xhOff + r * n;
      let mean = 0;
      for (let j = 0; j < n; j++) mean += X[x + j];
      mean /= n;
      let v = 0;
      for (let j = 0; j < n; j++) { const d = X[x + j] - mean; v += d * d; }
      const rs = 1 / Math.sqrt(v / n + eps);
      rstd[rOff + r] = rs;
      for (let j = 0; j < n; j++) { const z = (X[x + j] - mean) * rs; xhat[h + j] = z; Y[y + j] = gamma[gbOff + j] * z + beta[gbOff + j]; }
    }
  }

  layerNormBackward(rows: number, n: number, dY: Buf, dyOff: number, xhat: Buf, xhOff: number, rstd: Buf, rOff: number,
    gamma: Buf, gbOff: number, dGamma: Buf, dBeta: Buf, dX: Buf, dxOff: number): void {
    for (let r = 0; r < rows; r++) {
      const dy = dyOff + r * n, h = xhOff + r * n, dx = dxOff + r * n, rs = rstd[rOff + r];
      let m1 = 0, m2 = 0;
      for (let j = 0; j < n; j++) {
        const d = dY[dy + j], gy = d * gamma[gbOff + j];
        m1 += gy; m2 += gy * xhat[h + j];
        dGamma[gbOff + j] += d * xhat[h + j]; dBeta[gbOff + j] += d;
      }
      m1 /= n; m2 /= n;
      for (let j = 0; j < n; j++) dX[dx + j] = rs * (dY[dy + j] * gamma[gbOff + j] - m1 - xhat[h + j] * m2);
    }
  }

  columnStats(rows: number, n: number, X: Buf, xOff: number, mask: Uint8Array | null, mean: Buf, variance: Buf): void {
    let count = 0;
    for (let r = 0; r < rows; r++) if (!mask || mask[r]) count++;
    for (let j = 0; j < n; j++) {
      if (count === 0) { mean[j] = 0; variance[j] = 1; continue; }
      let m = 0;
      for (let r = 0; r < rows; r++) if (!mask || mask[r]) m += X[xOff + r * n + j];
      m /= count;
      let v = 0;
      for (let r = 0; r < rows; r++) if (!mask || mask[r]) { const d = X[xOff + r * n + j] - m; v += d * d; }
      mean[j] = m; variance[j] = v / count;
    }
  }

  normalizeColumns(rows: number, n: number, X: Buf, xOff: number, mean: Buf, variance: Buf, eps: number,
    gamma: Buf, beta: Buf, gbOff: number, Y: Buf, yOff: number, xhat: Buf, xhOff: number, rstd: Buf, rOff: number): void {
    for (let j = 0; j < n; j++) {
      const rs = 1 / Math.sqrt(variance[j] + eps), m = mean[j], g = gamma[gbOff + j], b = beta[gbOff + j];
      rstd[rOff + j] = rs;
      for (let r = 0; r < rows; r++) {
        const z = (X[xOff + r * n + j] - m) * rs;
        xhat[xhOff + r * n + j] = z;
        Y[yOff + r * n + j] = g * z + b;
      }
    }
  }

  batchNormBackward(rows: number, n: number, dY: Buf, dyOff: number, xhat: Buf, xhOff: number, rstd: Buf, rOff: number,
    gamma: Buf, gbOff: number, mask: Uint8Array | null, training: boolean, dGamma: Buf, dBeta: Buf, dX: Buf, dxOff: number): void {
    let count = 0;
    for (let r = 0; r < rows; r++) if (!mask || mask[r]) count++;
    for (let j = 0; j < n; j++) {
      const rs = rstd[rOff + j], g = gamma[gbOff + j];
      let m1 = 0, m2 = 0;
      for (let r = 0; r < rows; r++) {
        if (mask && !mask[r]) continue;
        const d = dY[dyOff + r * n + j], z = xhat[xhOff + r * n + j];
        m1 += d * g; m2 += d * g * z;
        dGamma[gbOff + j] += d * z; dBeta[gbOff + j] += d;
      }
      if (count > 0) { m1 /= count; m2 /= count; }
      for (let r = 0; r < rows; r++) {
        const i = r * n + j;
        if (mask && !mask[r]) dX[dxOff + i] = 0;
        else if (!training) dX[dxOff + i] = dY[dyOff + i] * g * rs;
        else dX[dxOff + i] = rs * (dY[dyOff + i] * g - m1 - xhat[xhOff + i] * m2);
      }
    }
  }

  adam(n: number, p: Buf, g: Buf, m: Buf, v: Buf, lr: number, b1: number, b2: number, eps: number,
    weightDecay: number, step: number): void {
    const bc1 = 1 - Math.pow(b1, step), bc2 = 1 - Math.pow(b2, step);
    const stepSize = lr / bc1, sqrtBc2 = Math.sqrt(bc2);
    for (let i = 0; i < n; i++) {
      const gi = g[i] + weightDecay * p[i];
      const mi = b1 * m[i] + (1 - b1) * gi;
      const vi = b2 * v[i] + (1 - b2) * gi * gi;
      m[i] = mi; v[i] = vi;
      p[i] -= stepSize * mi / (Math.sqrt(vi) / sqrtBc2 + eps);
    }
  }

  sgd(n: number, p: Buf, g: Buf, mom: Buf | null, lr: number, momentum: number, weightDecay: number): void {
    for (let i = 0; i < n; i++) {
      let d = g[i] + weightDecay * p[i];
      if (mom && momentum > 0) { mom[i] = momentum * mom[i] + d; d = mom[i]; }
      p[i] -= lr * d;
    }
  }

  // ---- batch-1 inference (the specification of Backend.step1*) ----

  step1Create(spec: Step1Spec): Step1Plan {
    const { G, L } = checkStep1Spec(spec);
    const { V, H } = spec, GH = G * H;
    const a = (n: number) => this.alloc(n);
    const plan: JsStep1Plan = {
      spec, owner: this, live: true, G, L, table: a(V * GH), wih: [], whh: [], bx: [], bhn: [],
      dec: a(V * H), decBias: spec.decoderBias ? a(V) : null, h: [a(L * H), a(L * H)], c: [a(L * H), a(L * H)],
      cur: 0, px: a(GH), ph: a(GH), logits: a(V),
    };
    for (let k = 0; k < L; k++) {
      plan.wih.push(a(k === 0 ? 0 : GH * H)); plan.whh.push(a(GH * H)); plan.bx.push(a(GH));
      plan.bhn.push(a(spec.cell === 'gru' ? H : 0));
    }
    this.step1Load(plan);
    return plan;
  }

  private step1Plan(p: Step1Plan): JsStep1Plan {
    const plan = p as JsStep1Plan;
    if (plan.owner !== this || !plan.live) throw new TypeError('rnnkit: step1: not a live plan of this backend');
    return plan;
  }

  step1Load(p: Step1Plan): void {
    const plan = this.step1Plan(p), { spec, G, L } = plan, { V, E, H } = spec, GH = G * H, gru = spec.cell === 'gru';
    checkStep1Spec(spec);
    for (let k = 0; k < L; k++) {
      const l = spec.layers[k];
      if (k > 0) plan.wih[k].set(l.wih);
      plan.whh[k].set(l.whh);
      for (let r = 0; r < GH; r++) plan.bx[k][r] = gru && r >= 2 * H ? l.bih[r] : l.bih[r] + l.bhh[r];
      if (gru) for (let j = 0; j < H; j++) plan.bhn[k][j] = l.bhh[2 * H + j];
    }
    // T0 = embedding · W_ih0^T, then the x-side biases
    this.gemm(false, true, V, GH, E, spec.embedding, 0, E, spec.layers[0].wih, 0, E, 0, plan.table, 0, GH);
    this.addRowVector(V, GH, plan.table, 0, plan.bx[0], 0, plan.table, 0);
    plan.dec.set(spec.decoder);
    if (plan.decBias) plan.decBias.set(spec.decoderBias!);
  }

  step1Run(p: Step1Plan, id: number): Buf {
    const plan = this.step1Plan(p), { spec, G, L } = plan, { V, H } = spec, GH = G * H;
    if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new RangeError(`rnnkit: step1: token ${id} outside [0, ${V})`);
    const hs = plan.h[plan.cur], cs = plan.c[plan.cur], hd = plan.h[1 - plan.cur], cd = plan.c[1 - plan.cur];
    const { px, ph } = plan, cell = spec.cell;
    for (let k = 0; k < L; k++) {
      const o = k * H;
      // x side: the table row (layer 0) or W_ih · (the new output of the layer below) + bx
      if (k === 0) for (let r = 0; r < GH; r++) px[r] = plan.table[id * GH + r];
      else {
        const w = plan.wih[k], x = o - H;
        for (let r = 0; r < GH; r++) {
          let s = 0;
          for (let i = 0; i < H; i++) s += w[r * H + i] * hd[x + i];
          px[r] = s + plan.bx[k][r];
        }
      }
      // h side: W_hh · h_prev
      const w = plan.whh[k];
      for (let r = 0; r < GH; r++) {
        let s = 0;
        for (let i = 0; i < H; i++) s += w[r * H + i] * hs[o + i];
        ph[r] = s;
      }
      for (let j = 0; j < H; j++) {
        if (cell === 'lstm') {
          const ig = sigmoid(px[j] + ph[j]), fg = sigmoid(px[H + j] + ph[H + j]);
          const gg = Math.tanh(px[2 * H + j] + ph[2 * H + j]), og = sigmoid(px[3 * H + j] + ph[3 * H + j]);
          const cv = fg * cs[o + j] + ig * gg;
          cd[o + j] = cv;
          hd[o + j] = og * Math.tanh(cv);
        } else if (cell === 'gru') {
          const r = sigmoid(px[j] + ph[j]), z = sigmoid(px[H + j] + ph[H + j]);
          const n = Math.tanh(px[2 * H + j] + r * (ph[2 * H + j] + plan.bhn[k][j]));
          hd[o + j] = (1 - z) * n + z * hs[o + j];
        } else {
          const v = px[j] + ph[j];
          hd[o + j] = cell === 'rnn_tanh' ? Math.tanh(v) : v > 0 ? v : 0;
        }
      }
    }
    const top = (L - 1) * H, dec = plan.dec, lg = plan.logits;
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let i = 0; i < H; i++) s += dec[v * H + i] * hd[top + i];
      lg[v] = plan.decBias ? s + plan.decBias[v] : s;
    }
    plan.cur = 1 - plan.cur;
    return lg;
  }

  step1State(p: Step1Plan, h: Buf | null, c: Buf | null, out: boolean): void {
    const plan = this.step1Plan(p), n = plan.L * plan.spec.H;
    const hs = plan.h[plan.cur], cs = plan.c[plan.cur];
    for (const [mine, theirs] of [[hs, h], [cs, plan.spec.cell === 'lstm' ? c : null]] as const) {
      if (theirs && theirs.length !== n) throw new Error(`rnnkit: step1State: state has ${theirs.length} values, expected ${n}`);
      if (out) { if (theirs) theirs.set(mine); } else if (theirs) mine.set(theirs); else mine.fill(0);
    }
  }

  step1Free(p: Step1Plan): void {
    const plan = p as JsStep1Plan;
    if (plan.owner === this) plan.live = false;
  }
}
