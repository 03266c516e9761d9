// rnnkit bench: the standard workload (training chars/s, sampling tokens/s).

import { Option, type Command } from 'commander';
import type { NormKind } from '../norm/norm.js';
import { defaultDataPath, loadText } from '../data/corpus.js';
import { BENCH_CONFIGS, benchSample, benchTrain, defaultConfigs } from '../bench/workload.js';
import { addBackendOptions, backendFrom, num } from './options.js';
import type { BackendName } from '../backend/index.js';

export function registerBench(program: Command): void {
  const cmd = program.command('bench')
    .description(`the standard workload: ${BENCH_CONFIGS.join(', ')} or all (L-lstm only with --backend webgpu)`)
    .option('--config <name>', `${BENCH_CONFIGS.join(' | ')} | all`, 'all')
    .option('--seconds <s>', 'minimum measured seconds per training config', num((n) => n > 0, 'a positive number'), 15)
    .addOption(new Option('--norm <kind>', 'normalization in the recurrent layers (training configs)').choices(['none', 'batch', 'layer', 'weight']).default('none'))
    .option('--kernels', 'webgpu: time one dispatch and each gemm of M-lstm/L-lstm per tile size instead (GPU tuning)', false)
    .option('--json', 'one JSON line per measurement', false);
  addBackendOptions(cmd).action(async (a: { config: string; seconds: number; json: boolean; kernels: boolean; norm: NormKind; backend: BackendName; threads: number }) => {
    const be = await backendFrom(a);
    if (a.kernels) {
      const { WebGPUBackend } = await import('../backend/webgpu.js');
      const { benchKernels } = await import('../bench/kernels.js');
      if (!(be instanceof WebGPUBackend)) throw new Error(`bench --kernels times the webgpu backend's kernels: add --backend webgpu (got ${be.name})`);
      await benchKernels(be, { log: (r) => console.log(a.json ? JSON.stringify(r) : r.kernel === 'dispatch'
        ? `dispatch: ${r.us.toFixed(2)} us each on the device, ${r.host_us.toFixed(2)} us to record (${r.calls} in a chain)`
        : `gemm ${r.shape} tiles ${r.tiles} (${r.tile}, split ${r.split}): ${r.us.toFixed(1)} us, ${r.tflops!.toFixed(2)} TFLOP/s`) });
      be.dispose();
      return;
    }
    const names = a.config === 'all' ? defaultConfigs(be) : a.config.split(',');
    for (const n of names) if (!BENCH_CONFIGS.includes(n)) throw new Error(`unknown bench config '${n}' (expected one of ${BENCH_CONFIGS.join(', ')} or all)`);
    const bytes = await loadText(defaultDataPath(), 'raw');
    const data = Int32Array.from(bytes.subarray(0, 1 << 20));
    for (const n of names) {
      const r = n === 'sample' ? await benchSample(be) : await benchTrain(be, n, data, a.seconds, 20, a.norm);
      if (a.json) console.log(JSON.stringify(r));
      else console.log(n === 'sample'
        ? `${n}: ${Math.round(r.tokens_per_s!).toLocaleString()} tokens/s (${be.name}, ${be.threads} thread(s))`
        : `${n}: ${Math.round(r.chars_per_s!).toLocaleString()} chars/s (${be.name}, ${be.threads} thread(s), ${r.steps} steps in ${r.seconds.toFixed(1)} s)`);
    }
    be.dispose();
  });
}
