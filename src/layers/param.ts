// A named parameter: its values and its gradient, both allocated once by the backend.

import type { Backend, Buf } from '../backend/backend.js';
import type { Rng } from '../util/rng.js';

export class Param {
  readonly size: number;
  readonly data: Buf;
  readonly grad: Buf;

  constructor(private readonly be: Backend, readonly name: string, readonly shape: number[]) {
    this.size = shape.reduce((a, b) => a * b, 1);
    this.data = be.alloc(this.size);
    this.grad = be.alloc(this.size);
  }

  /** Fill with U(lo, hi) from the seeded generator. */
  uniform(rng: Rng, lo: number, hi: number): this {
    for (let i = 0; i < this.size; i++) this.data[i] = rng.uniform(lo, hi);
    return this;
  }

  zeroGrad(): void {
    this.be.fill(this.size, 0, this.grad, 0);
  }
}

/** Anything that owns parameters. Names follow PyTorch (`weight_ih_l0`, `decoder.bias`, ...). */
export interface HasParams {
  parameters(): Param[];
}

/** Prefix the names of a child's parameters, as PyTorch's `named_parameters()` does for submodules. */
export function namedParameters(children: Record<string, HasParams>): Map<string, Param> {
  const out = new Map<string, Param>();
  for (const [prefix, child] of Object.entries(children)) {
    for (const p of child.parameters()) out.set(prefix ? `${prefix}.${p.name}` : p.name, p);
  }
  return out;
}

/** Throw a clear error when a buffer does not have the size a shape needs. */
export function checkSize(what: string, got: number, shape: number[]): void {
  const want = shape.reduce((a, b) => a * b, 1);
  if (got !== want) throw new Error(`${what}: expected shape [${shape.join(', ')}] (${want} values), got ${got}`);
}
