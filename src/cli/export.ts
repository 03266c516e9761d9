// rnnkit export: a checkpoint in another form: PyTorch (word_language_model safetensors) or ONNX.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Option, type Command } from 'commander';
import { JsBackend } from '../backend/js.js';
import { encodeOnnx } from '../io/onnx.js';
import { writeFileAtomic } from '../io/safetensors.js';
import { encodeTorchCheckpoint } from '../io/torch.js';
import { loadCheckpoint } from '../train/checkpoint.js';

export type ExportFormat = 'torch' | 'onnx';

/** Load `checkpoint` and write it to `out` in `format` (atomically). Returns the bytes written. */
export function exportCheckpoint(checkpoint: string, format: ExportFormat, out: string): number {
  const { model, vocab } = loadCheckpoint(checkpoint, new JsBackend('float32'));
  const bytes = format === 'torch' ? encodeTorchCheckpoint(model, vocab) : encodeOnnx(model, vocab);
  if (dirname(out) !== '.') mkdirSync(dirname(out), { recursive: true });
  writeFileAtomic(out, bytes);
  return bytes.length;
}

export function registerExport(program: Command): void {
  program.command('export')
    .description('write a checkpoint as a PyTorch word_language_model safetensors file (--format torch) or an ONNX model with ONNX LSTM/GRU/RNN operators (--format onnx)')
    .addOption(new Option('--format <format>', 'torch: state_dict keys (encoder.weight, rnn.weight_ih_l0, ..., decoder.bias) + rnn_type/vocab metadata; onnx: inputs ids int64 [T,B], h0 [L,B,H] (c0 for LSTM), outputs logits [T,B,V], hN (cN)').choices(['torch', 'onnx']).makeOptionMandatory())
    .requiredOption('--checkpoint <file>', 'checkpoint to export (rnnkit or PyTorch-style safetensors)')
    .requiredOption('--out <file>', 'file to write')
    .action((a: { format: ExportFormat; checkpoint: string; out: string }) => {
      const n = exportCheckpoint(a.checkpoint, a.format, a.out);
      console.log(`${a.out}: ${a.format} export of ${a.checkpoint} (${n.toLocaleString()} bytes)`);
    });
}
