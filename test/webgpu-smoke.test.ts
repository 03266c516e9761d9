// WebGPU in Node: a device (on a GPU, or on lavapipe from scripts/setup-lavapipe.sh) that runs one WGSL
// compute shader, y = 2x on 1000 floats, and reads it back. Skipped, with the reason, when no adapter can be
// had (no `webgpu` package, no Vulkan loader or driver).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { releaseWebGPU, requestWebGPUDevice, runSmokeShader } from '../src/backend/webgpu-device.js';

// Dawn's instance must outlive the device; releaseWebGPU() destroys the device and lets Node exit.
after(() => releaseWebGPU());

test('webgpu: y = 2x on 1000 floats', async (t) => {
  let got: Awaited<ReturnType<typeof requestWebGPUDevice>>;
  try {
    got = await requestWebGPUDevice();
  } catch (e) {
    const reason = (e as Error).message;
    console.log(`webgpu smoke test skipped: ${reason}`);
    t.skip(reason);
    return;
  }
  const { device, adapterInfo } = got;
  console.log(`webgpu adapter: ${adapterInfo}`);
  assert.ok(device.limits.maxStorageBufferBindingSize >= 128 * 1024 * 1024, 'maxStorageBufferBindingSize raised');
  const r = await runSmokeShader(device, 1000);
  assert.equal(r.maxError, 0, `largest |y - 2x| = ${r.maxError}`);
  device.destroy();
});
