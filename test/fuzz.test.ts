// A short slice of the fuzzer (scripts/fuzz.mjs; the full run is 10,000+ cases per target): hostile bytes into
// the checkpoint loader and the dump/text readers give only clear errors: no crash, no hang, bounded memory.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const script = [join(here, '..', '..', 'scripts', 'fuzz.mjs'), join(here, '..', 'scripts', 'fuzz.mjs')].find((f) => {
  try { return spawnSync(process.execPath, ['--check', f]).status === 0; } catch { return false; }
})!;

interface TargetReport { cases: number; loaded: number; errors: number; crashes: number; hangs: number; byKind: Record<string, number>; crashList: string[] }

test('fuzz slice: 300 hostile inputs per reader, only clear errors (scripts/fuzz.mjs --cases 300)', () => {
  const r = spawnSync(process.execPath, [script, '--cases', '300', '--seed', '7', '--json'], { encoding: 'utf8', timeout: 180_000 });
  assert.ok(r.stdout.trim(), `no report (exit ${r.status}, signal ${r.signal}): ${r.stderr}`);
  const report = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ok: boolean; failure?: string; peakRssMB: number; targets: Record<string, TargetReport> };
  for (const [name, t] of Object.entries(report.targets)) {
    assert.equal(t.cases, 300, name);
    assert.equal(t.crashes, 0, `${name}: ${t.crashList.join('\n')}`);
    assert.equal(t.hangs, 0, `${name}: ${t.crashList.join('\n')}`);
    assert.equal(t.loaded + t.errors, 300, name);
  }
  assert.deepEqual(Object.keys(report.targets), ['safetensors', 'checkpoint', 'text', 'pages']);
  // the mutations reach deep into validation, not only the first check
  assert.ok(Object.keys(report.targets.safetensors.byKind).length >= 8, JSON.stringify(report.targets.safetensors.byKind));
  assert.ok(Object.keys(report.targets.checkpoint.byKind).length >= 10, JSON.stringify(report.targets.checkpoint.byKind));
  assert.ok(report.targets.checkpoint.loaded > 0 && report.targets.text.loaded > 0 && report.targets.pages.loaded > 0);
  assert.equal(report.failure, undefined);
  assert.ok(report.ok);
  assert.equal(r.status, 0);
});
