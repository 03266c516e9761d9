// Batching of one long id stream for truncated BPTT, as pytorch/examples does it (batchify + get_batch):
// the stream is cut into B contiguous columns; batch i takes rows [i, i+T) as input and [i+1, i+T+1) as
// targets, time-major [T, B]. Consecutive batches continue each column, so the hidden state is carried.

export class BatchedStream {
  /** [rows, B] time-major: data[t*B + b] = stream[b*rows + t]. */
  readonly data: Int32Array;
  readonly rows: number;

  constructor(stream: Int32Array, readonly B: number) {
    this.rows = Math.floor(stream.length / B);
    if (this.rows < 2) throw new Error(`not enough data: ${stream.length} tokens cannot make ${B} columns of at least 2`);
    this.data = new Int32Array(this.rows * B);
    for (let b = 0; b < B; b++) for (let t = 0; t < this.rows; t++) this.data[t * B + b] = stream[b * this.rows + t];
  }

  /** Steps in the batch starting at row i (T, or fewer at the end). */
  steps(i: number, T: number): number {
    return Math.min(T, this.rows - 1 - i);
  }

  input(i: number, T: number): Int32Array {
    return this.data.subarray(i * this.B, (i + T) * this.B);
  }

  target(i: number, T: number): Int32Array {
    return this.data.subarray((i + 1) * this.B, (i + 1 + T) * this.B);
  }
}
