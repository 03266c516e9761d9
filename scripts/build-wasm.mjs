// Compiles the AssemblyScript kernels (assembly/index.ts) into two WebAssembly modules:
//   dist/wasm/rnnkit-simd.wasm     SIMD128, mul + add, 5x8 gemm tile
//   dist/wasm/rnnkit-relaxed.wasm  relaxed SIMD (f32x4.relaxed_madd = FMA), 6x8 gemm tile
// Both import a shared memory `env.memory` so that worker threads can run on the same data.
import asc from 'assemblyscript/asc';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist', 'wasm');
mkdirSync(outDir, { recursive: true });

const MAX_PAGES = 65536; // 4 GiB; the JS side may create the memory with a smaller maximum

const common = [
  join(root, 'assembly', 'index.ts'),
  '-O3', '--runtime', 'stub', '--noAssert',
  '--importMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', String(MAX_PAGES),
  '--enable', 'simd', '--enable', 'threads', '--use', 'abort=',
];

const builds = [
  { name: 'rnnkit-simd.wasm', extra: [] },
  { name: 'rnnkit-relaxed.wasm', extra: ['--enable', 'relaxed-simd'] },
];

let failed = false;
for (const b of builds) {
  const out = join(outDir, b.name);
  const { error, stderr } = await asc.main([...common, ...b.extra, '--outFile', out], {});
  if (error) {
    console.error(`build-wasm: ${b.name} failed: ${error.message}\n${stderr.toString()}`);
    failed = true;
  } else {
    console.log(`build-wasm: wrote ${out}`);
  }
}
if (failed) process.exit(1);
