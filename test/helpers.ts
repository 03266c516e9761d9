// Shared by the correctness tests: the fixture folder, and finite-difference gradient checks in float64.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend, Buf } from '../src/backend/backend.js';
import { RecurrentStack, type RecurrentOptions, type RnnMode } from '../src/layers/recurrent.js';
import { Rng } from '../src/util/rng.js';

// Fixtures live in the source tree; compiled tests run from dist/test.
const here = dirname(fileURLToPath(import.meta.url));
export const fixtureDir = [join(here, 'fixtures'), join(here, '..', '..', 'test', 'fixtures')].find((d) => {
  try { return readdirSync(d).length > 0; } catch { return false; }
})!;
export const loadFixture = (f: string): any => JSON.parse(readFileSync(join(fixtureDir, f), 'utf8'));

/**
 * Max abs error <= tol. With `relative`, errors are divided by max(1, max |want|) of the tensor: the gradients
 * of normalized layers are sums of terms of 50 and more, where float32 keeps about 7 significant digits.
 * A NaN anywhere fails.
 */
export function closeTo(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number, relative = false): void {
  assert.equal(got.length, want.length, `${what}: length ${got.length} != ${want.length}`);
  let worst = 0, at = -1, scale = 1;
  if (relative) for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]) / scale;
    if (!(d <= worst)) { worst = d; at = i; }
  }
  assert.ok(worst <= tol, `${what}: max ${relative ? 'error (of the tensor scale)' : 'abs error'} ${worst} at ${at} (got ${got[at]}, want ${want[at]})`);
}

/**
 * Central differences (eps 1e-5) on `samples` random coordinates of buf against the analytic gradient:
 * |a - n| / max(|a| + |n|, floor) <= 1e-6 for each.
 */
export function checkGradient(name: string, buf: Buf, analytic: ArrayLike<number>, f: () => number, rng: Rng,
  samples = 8, floor = 1e-5): void {
  const eps = 1e-5;
  const idx = new Set<number>();
  while (idx.size < Math.min(samples, buf.length)) idx.add(rng.int(buf.length));
  for (const i of idx) {
    const old = buf[i];
    buf[i] = old + eps; const lp = f();
    buf[i] = old - eps; const lm = f();
    buf[i] = old;
    const num = (lp - lm) / (2 * eps), a = analytic[i];
    const rel = Math.abs(a - num) / Math.max(Math.abs(a) + Math.abs(num), floor);
    assert.ok(rel <= 1e-6, `${name}[${i}]: analytic ${a} vs numeric ${num} (rel ${rel.toExponential(2)})`);
  }
}

export interface StackCheck {
  T: number;
  B: number;
  I: number;
  H: number;
  /** Seed of the inputs and of the coordinates checked. */
  rngSeed: number;
  /** Seed of the stack's initialisation. */
  stackSeed: number;
  /** Variable lengths [B] (null: all T). */
  lengths?: number[] | null;
  /** Move γ/β (norm_*) and weight-norm g (*_g) away from their initial values. */
  perturbNorm?: boolean;
  /** Coordinates checked per parameter, of x, and of each initial state. */
  samples: { params: number; x: number; state: number };
}

/**
 * A recurrent stack's backward against finite differences: loss = Σ out·dy + Σ hN·dhN (+ Σ cN·dcN), with
 * non-zero initial states; dropout masks are replayed from the saved generator state at every evaluation.
 * Checks every parameter, the input and the initial states.
 */
export function checkStackGradients(be: Backend, mode: RnnMode, opts: Partial<RecurrentOptions>, c: StackCheck): void {
  const { T, B, I, H } = c;
  const rng = new Rng(c.rngSeed);
  const rnn = new RecurrentStack(be, mode, { inputSize: I, hiddenSize: H, seed: c.stackSeed, ...opts });
  if (c.perturbNorm) {
    for (const p of rnn.parameters()) if (/^norm_|_g$/.test(p.name)) for (let i = 0; i < p.size; i++) p.data[i] += rng.uniform(-0.3, 0.3);
  }
  const S = rnn.stateLength(B), outT = rnn.outputSteps(T), O = rnn.outputSize;
  const rand = (n: number, a: number): Buf => be.alloc(n).map(() => rng.uniform(-a, a));
  const x = rand(T * B * I, 1.5), h0 = rand(S, 0.8), c0 = rand(S, 0.8);
  const dy = rand(outT * B * O, 1), dhN = rand(S, 1), dcN = rand(S, 1);
  const lens = c.lengths ? Int32Array.from(c.lengths) : null;
  const lstm = mode === 'LSTM';
  const rngState = rnn.rngState;
  const loss = (): number => {
    rnn.rngState = rngState; // the same dropout masks every time
    const r = rnn.forward(x, 0, T, B, h0, lstm ? c0 : null, true, lens);
    assert.equal(r.outT, outT);
    let s = 0;
    for (let i = 0; i < outT * B * O; i++) s += r.out[r.outOff + i] * dy[i];
    for (let i = 0; i < S; i++) s += r.hN[i] * dhN[i] + (r.cN ? r.cN[i] * dcN[i] : 0);
    return s;
  };
  loss();
  const params = rnn.parameters();
  for (const p of params) p.zeroGrad();
  const g = rnn.backward(dy, 0, dhN, lstm ? dcN : null, true);
  const dx = Float64Array.from(g.dx!.subarray(0, T * B * I)), dh0 = Float64Array.from(g.dh0), dc0 = g.dc0 ? Float64Array.from(g.dc0) : null;
  const grads = params.map((p) => Float64Array.from(p.grad));
  params.forEach((p, k) => checkGradient(p.name, p.data, grads[k], loss, rng, c.samples.params));
  checkGradient('x', x, dx, loss, rng, c.samples.x);
  checkGradient('h0', h0, dh0, loss, rng, c.samples.state);
  if (dc0) checkGradient('c0', c0, dc0, loss, rng, c.samples.state);
}
