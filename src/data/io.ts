/** File helpers shared by the data layer: clear error messages, transparent gzip. */
import { createReadStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { createGunzip, gunzip } from 'node:zlib';
import { promisify } from 'node:util';

const gunzipAsync = promisify(gunzip);

/** True for the gzip magic bytes 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function reasonOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return 'a parent path is not a directory';
    default:
      return e?.message ?? String(err);
  }
}

/** Wraps a file-system error as `cannot read data file 'x': <reason>`. */
export function readError(file: string, err: unknown): Error {
  return new Error(`cannot read data file '${file}': ${reasonOf(err)}`, { cause: err });
}

function gzipError(file: string, err: unknown): Error {
  const msg = (err as Error)?.message ?? String(err);
  return new Error(`data file '${file}' is not valid gzip (${msg})`, { cause: err });
}

/** Rejects formats we cannot decompress (bzip2, xz, zstd), with a hint. */
function checkSupported(file: string, head: Uint8Array): void {
  const magic = (...b: number[]) => b.every((x, i) => head[i] === x);
  const kind = magic(0x42, 0x5a, 0x68) ? ['bzip2', 'bunzip2 -k']
    : magic(0xfd, 0x37, 0x7a, 0x58, 0x5a) ? ['xz', 'unxz -k']
    : magic(0x28, 0xb5, 0x2f, 0xfd) ? ['zstd', 'unzstd']
    : undefined;
  if (kind) {
    throw new Error(`data file '${file}' is ${kind[0]}-compressed, which rnnkit cannot read; decompress it first (${kind[1]} '${file}') or recompress it with gzip`);
  }
}

/** Should this file be gunzipped? (a `.gz` name, or gzip magic in its first bytes) */
function wantsGunzip(file: string, head: Uint8Array): boolean {
  return /\.gz$/i.test(file) || isGzip(head);
}

/**
 * Reads a whole file, gunzipping it when it ends in `.gz` or starts with the gzip magic.
 * Errors name the file: missing/unreadable, empty, not valid gzip.
 */
export async function readFileBytes(file: string): Promise<Uint8Array> {
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch (err) {
    throw readError(file, err);
  }
  if (raw.length === 0) throw new Error(`data file '${file}' is empty`);
  checkSupported(file, raw);
  let bytes: Uint8Array = raw;
  if (wantsGunzip(file, raw)) {
    try {
      bytes = await gunzipAsync(raw);
    } catch (err) {
      throw gzipError(file, err);
    }
    if (bytes.length === 0) throw new Error(`data file '${file}' is empty (after gunzip)`);
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Reads up to `n` leading bytes of the file's (decompressed) content. */
export async function readHead(file: string, n = 4096): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let got = 0;
  for await (const chunk of streamFile(file)) {
    chunks.push(chunk);
    got += chunk.length;
    if (got >= n) break;
  }
  const all = Buffer.concat(chunks);
  if (all.length === 0) throw new Error(`data file '${file}' is empty`);
  return all.subarray(0, n);
}

/**
 * Streams a file's bytes, gunzipping on the fly when the name ends in `.gz` or it starts with the gzip
 * magic. Errors are reported like {@link readFileBytes}.
 */
export async function* streamFile(file: string, highWaterMark = 1 << 16): AsyncGenerator<Uint8Array> {
  let head: Buffer;
  try {
    const fh = await open(file, 'r');
    try {
      const buf = Buffer.alloc(8);
      const { bytesRead } = await fh.read(buf, 0, 8, 0);
      head = buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw readError(file, err);
  }
  if (head.length === 0) throw new Error(`data file '${file}' is empty`);
  checkSupported(file, head);
  const input = createReadStream(file, { highWaterMark });
  if (!wantsGunzip(file, head)) {
    try {
      for await (const chunk of input) yield chunk as Buffer;
    } catch (err) {
      throw readError(file, err);
    } finally {
      input.destroy();
    }
    return;
  }
  const gz = createGunzip();
  input.on('error', (err) => gz.destroy(readError(file, err)));
  input.pipe(gz);
  try {
    for await (const chunk of gz) yield chunk as Buffer;
  } catch (err) {
    if ((err as Error)?.message?.startsWith('cannot read data file')) throw err;
    throw gzipError(file, err);
  } finally {
    input.destroy();
    gz.destroy();
  }
}
