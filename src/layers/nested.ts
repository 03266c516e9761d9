// Parameter names of nested modules, as PyTorch's `named_parameters()` gives them: `prefix.child_key`.
// `namedParameters` (param.ts) prefixes each parameter's own name, which is right for a leaf layer (Linear:
// weight, bias) but would merge the layers of a container (an MLP's `0.weight` and `2.weight` are both named
// `weight`). A child that keeps its own name map (`params`) is prefixed key by key instead.

import type { HasParams, Param } from './param.js';

export type Child = HasParams & { params?: Map<string, Param> };

export function nestedParameters(children: Record<string, Child>): Map<string, Param> {
  const out = new Map<string, Param>();
  for (const [prefix, child] of Object.entries(children)) {
    const entries: [string, Param][] = child.params ? [...child.params] : child.parameters().map((p) => [p.name, p]);
    for (const [name, p] of entries) {
      const full = prefix ? `${prefix}.${name}` : name;
      if (out.has(full)) throw new Error(`duplicate parameter name '${full}'`);
      out.set(full, p);
    }
  }
  return out;
}
