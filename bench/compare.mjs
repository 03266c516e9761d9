#!/usr/bin/env node
// Side by side in one run: rnnkit (wasm, N threads) and PyTorch (Debian python3-torch + OpenBLAS, N threads,
// OMP_WAIT_POLICY=passive) on the standard workload, alternating per config so both see the same machine.
// Usage: node bench/compare.mjs [--threads 2] [--seconds 15] [--configs S-lstm,S-gru,...] [--norm] [--out FILE.json]
// The PyTorch side runs only where /usr/bin/python3 has torch (apt-get install python3-torch libopenblas0-pthread).

import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : def; };
const threads = opt('threads', '2'), seconds = opt('seconds', '15');
const configs = opt('configs', 'S-lstm,S-gru,S-rnn,M-lstm,M-gru,sample').split(',');
const cli = join(here, '..', 'dist', 'src', 'cli', 'main.js');
const data = join(here, '..', '..', 'shared', 'data', 'wikipedia', 'enwik8', 'enwik8_bytes_0_3405276.xml');

const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
if (!hasTorch) console.error('# /usr/bin/python3 has no torch: PyTorch side skipped');

const lines = (out) => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
const rows = [];
for (const c of configs) {
  const ours = lines(execFileSync(process.execPath, [cli, 'bench', '--config', c, '--threads', threads, '--seconds', seconds, '--json'], { encoding: 'utf8' }))[0];
  let theirs = null;
  if (hasTorch) {
    const r = spawnSync('sh', [join(here, 'torch_bench.sh'), '--config', c, '--threads', threads, '--seconds', seconds, '--json', '--data', data], { encoding: 'utf8' });
    theirs = lines(r.stdout)[0] ?? null;
  }
  const key = c === 'sample' ? 'tokens_per_s' : 'chars_per_s';
  const row = { config: c, threads: Number(threads), rnnkit: ours[key], rnnkit_backend: ours.backend, pytorch: theirs?.[key] ?? null };
  row.ratio = row.pytorch ? row.rnnkit / row.pytorch : null;
  rows.push(row);
  console.log(JSON.stringify(row));
}
const fmt = (v) => (v == null ? '-' : Math.round(v).toLocaleString('en-US'));
console.log(`\n| config | rnnkit (${rows[0]?.rnnkit_backend}, ${threads} threads) | PyTorch 1.13 CPU (${threads} threads) | ratio |\n|---|---|---|---|`);
for (const r of rows) console.log(`| ${r.config} | ${fmt(r.rnnkit)} | ${fmt(r.pytorch)} | ${r.ratio == null ? '-' : r.ratio.toFixed(2) + 'x'} |`);
const out = opt('out', null);
if (out) writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), threads: Number(threads), rows }, null, 1));
