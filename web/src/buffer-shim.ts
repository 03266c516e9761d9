// The part of Node's Buffer that the library's safetensors writer (encodeSafetensors) uses, for the
// worker: Buffer.from(string | ArrayBuffer view), Buffer.alloc, writeBigUInt64LE, copy.

class ShimBuffer extends Uint8Array {
  static override from(x: unknown, a?: unknown, b?: unknown): ShimBuffer {
    if (typeof x === 'string') return new ShimBuffer(new TextEncoder().encode(x));
    // an ArrayBuffer or SharedArrayBuffer (the wasm memory): a view, like Node's Buffer.from(buffer, offset, length)
    if (x instanceof ArrayBuffer || Object.prototype.toString.call(x) === '[object SharedArrayBuffer]') {
      return new ShimBuffer(x as ArrayBuffer, a as number | undefined, b as number | undefined);
    }
    return new ShimBuffer(x as ArrayLike<number>);
  }
  static alloc(n: number): ShimBuffer {
    return new ShimBuffer(n);
  }
  writeBigUInt64LE(v: bigint | number, off = 0): number {
    new DataView(this.buffer, this.byteOffset, this.byteLength).setBigUint64(off, BigInt(v), true);
    return off + 8;
  }
  copy(target: Uint8Array, targetStart = 0): number {
    target.set(this, targetStart);
    return this.length;
  }
}

export function installBufferShim(): void {
  const g = globalThis as { Buffer?: unknown };
  if (g.Buffer === undefined) g.Buffer = ShimBuffer;
}
