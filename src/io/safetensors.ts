// safetensors: 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
// optional "__metadata__" of string values, then the raw little-endian tensor bytes.
// Reading validates everything and reports problems naming the file.

import { closeSync, fsyncSync, openSync, readFileSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export interface SafeTensors {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

const MAX_HEADER = 100 * 1024 * 1024;
const DTYPE_SIZE: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** Serialise float32 tensors (and string metadata) into safetensors bytes. */
export function encodeSafetensors(tensors: Map<string, { shape: number[]; data: ArrayLike<number> }>, metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`tensor '${name}': shape [${t.shape}] needs ${n} values, has ${t.data.length}`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * n] };
    offset += 4 * n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // align the data to 8 bytes, as the reference writer does
  const hbytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + hbytes.length + offset);
  out.writeBigUInt64LE(BigInt(hbytes.length), 0);
  hbytes.copy(out, 8);
  let pos = 8 + hbytes.length;
  for (const t of tensors.values()) {
    const f = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
    Buffer.from(f.buffer, f.byteOffset, f.byteLength).copy(out, pos);
    pos += f.byteLength;
  }
  return out;
}

/** Parse and validate safetensors bytes; `file` names the source in error messages. F64/F32/F16/BF16 load as float32. */
export function decodeSafetensors(buf: Uint8Array, file: string): SafeTensors {
  const fail = (why: string): never => { throw new Error(`bad checkpoint '${file}': ${why}`); };
  if (buf.length < 8) fail(`file is ${buf.length} bytes, too short for a safetensors header`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const hlen64 = view.getBigUint64(0, true);
  if (hlen64 > BigInt(MAX_HEADER)) fail(`declared header size ${hlen64} exceeds the ${MAX_HEADER}-byte limit`);
  const hlen = Number(hlen64);
  if (8 + hlen > buf.length) fail(`declared header size ${hlen} runs past the end of the file (${buf.length} bytes)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + hlen)));
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const h = header as Record<string, unknown>;
  const dataStart = 8 + hlen, dataLen = buf.length - dataStart;
  const metadata: Record<string, string> = {};
  if ('__metadata__' in h) {
    const m = h.__metadata__;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) fail('__metadata__ is not an object');
    for (const [k, v] of Object.entries(m as object)) {
      if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
      metadata[k] = v as string;
    }
  }
  const spans: [number, number, string][] = [];
  const tensors = new Map<string, Tensor>();
  for (const [name, entry] of Object.entries(h)) {
    if (name === '__metadata__') continue;
    if (typeof entry !== 'object' || entry === null) fail(`tensor '${name}' entry is not an object`);
    const { dtype, shape, data_offsets: offs } = entry as { dtype: unknown; shape: unknown; data_offsets: unknown };
    if (typeof dtype !== 'string' || !(dtype in DTYPE_SIZE)) fail(`tensor '${name}' has unknown dtype ${JSON.stringify(dtype)}`);
    if (!['F32', 'F64', 'F16', 'BF16'].includes(dtype as string)) fail(`tensor '${name}' has dtype ${dtype}; only floating-point tensors are supported`);
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(offs) || offs.length !== 2 || offs.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(offs)}`);
    const [a, b] = offs as [number, number];
    const n = (shape as number[]).reduce((x, y) => x * y, 1);
    const size = DTYPE_SIZE[dtype as string];
    if (b < a || b > dataLen) fail(`tensor '${name}' data_offsets [${a}, ${b}] are outside the data section (${dataLen} bytes)`);
    if (b - a !== n * size) fail(`tensor '${name}' has shape [${shape}] (${n * size} bytes) but its data_offsets span ${b - a} bytes`);
    spans.push([a, b, name]);
    tensors.set(name, { shape: shape as number[], data: toFloat32(buf.subarray(dataStart + a, dataStart + b), dtype as string, n) });
  }
  spans.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  // As the format requires: the tensors index the whole data section, without overlaps or holes.
  let end = 0;
  for (let i = 0; i < spans.length; i++) {
    if (i > 0 && spans[i][0] < spans[i - 1][1]) fail(`tensors '${spans[i - 1][2]}' and '${spans[i][2]}' overlap`);
    if (spans[i][0] > end) fail(`bytes ${end}..${spans[i][0]} of the data section belong to no tensor (a hole before '${spans[i][2]}')`);
    end = Math.max(end, spans[i][1]);
  }
  if (end !== dataLen) fail(`the data section has ${dataLen - end} bytes after the last tensor (${dataLen} bytes, tensors end at ${end})`);
  return { tensors, metadata };
}

function toFloat32(bytes: Uint8Array, dtype: string, n: number): Float32Array {
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'F32') for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
  else if (dtype === 'F64') for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
  else if (dtype === 'BF16') for (let i = 0; i < n; i++) out[i] = bf16(dv.getUint16(2 * i, true));
  else for (let i = 0; i < n; i++) out[i] = f16(dv.getUint16(2 * i, true));
  return out;
}

const cvt = new DataView(new ArrayBuffer(4));
function bf16(u: number): number { cvt.setUint32(0, u << 16); return cvt.getFloat32(0); }
function f16(u: number): number {
  const s = u & 0x8000 ? -1 : 1, e = (u >> 10) & 0x1f, m = u & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * Write a file atomically: a temporary file `<file>.<pid>.tmp` in the same folder, fsync, rename over the
 * target, fsync the folder. A reader sees the old file or the new one, never a part, even after kill -9 or a
 * power cut. Temporaries left by processes that died mid-write are removed. Errors name the file.
 */
export function writeFileAtomic(file: string, bytes: Uint8Array): void {
  const tmp = `${file}.${process.pid}.tmp`;
  let fd = -1;
  try {
    fd = openSync(tmp, 'w');
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, file);
  } catch (e) {
    if (fd >= 0) try { closeSync(fd); } catch { /* already closed */ }
    try { unlinkSync(tmp); } catch { /* never created, or already gone */ }
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'its folder does not exist' : err.code === 'EACCES' || err.code === 'EPERM' ? 'permission denied'
      : err.code === 'ENOSPC' ? 'no space left on the device' : err.code === 'EISDIR' ? 'it is a directory' : err.message;
    throw new Error(`cannot write '${file}': ${why}`, { cause: e });
  }
  // Make the rename itself durable: fsync the folder (not possible on every platform; then the rename is
  // still atomic, only its durability across a power cut is up to the file system).
  const dir = dirname(file) || '.';
  try {
    const dfd = openSync(dir, 'r');
    try { fsyncSync(dfd); } finally { closeSync(dfd); }
  } catch { /* e.g. Windows cannot open a folder */ }
  removeStaleTemporaries(dir, basename(file));
}

/** Remove `<name>.<pid>.tmp` files in `dir` whose writing process no longer exists (killed mid-write). */
function removeStaleTemporaries(dir: string, name: string): void {
  let entries: string[];
  try { entries = readdirSync(dir); } catch { return; }
  for (const f of entries) {
    if (!f.startsWith(`${name}.`) || !f.endsWith('.tmp')) continue;
    const pid = Number(f.slice(name.length + 1, -4));
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) continue;
    try {
      process.kill(pid, 0); // throws ESRCH when no such process; EPERM means it exists
      continue;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') continue;
    }
    try { unlinkSync(join(dir, f)); } catch { /* raced with someone else */ }
  }
}

export function readSafetensorsFile(file: string): SafeTensors {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'it is a directory' : err.message;
    throw new Error(`cannot read checkpoint '${file}': ${why}`);
  }
  return decodeSafetensors(bytes, file);
}
