/// <reference types="@webgpu/types" />
// A WebGPU device for the webgpu backend: navigator.gpu in a browser; in Node the `webgpu` package (Dawn's
// dawn.node, an optional dependency: `npm install webgpu`).
//
// Node needs a Vulkan loader (libvulkan.so.1) and a Vulkan driver. On a machine without a GPU,
// scripts/setup-lavapipe.sh unpacks Mesa 25's lavapipe (software Vulkan) and the loader into
// .cache/lavapipe/; this module then uses them without any environment from the user:
//  - VK_DRIVER_FILES / VK_ICD_FILENAMES are set in process.env before Dawn creates its Vulkan instance (the
//    loader reads them then), unless the user set either;
//  - LD_LIBRARY_PATH cannot help (the dynamic linker reads it once, at process start), so the libraries
//    listed in .cache/lavapipe/preload.txt (the loader and the driver's newer libdrm, dependencies first) are
//    dlopen'ed by absolute path with RTLD_NODELETE via process.dlopen. That call fails with "Module did not
//    self-register" (they are not Node addons) but the library stays loaded, so Dawn's later
//    dlopen("libvulkan.so.1") and the driver's DT_NEEDED entries resolve to it by soname.
// Environment: RNNKIT_LAVAPIPE=0 ignores .cache/lavapipe, =1 uses it even when a system Vulkan loader exists
// (default: used when VK_DRIVER_FILES/VK_ICD_FILENAMES are unset); RNNKIT_LAVAPIPE_DIR points elsewhere;
// RNNKIT_DAWN_FLAGS adds create() flags (space-separated, e.g. "backend=vulkan adapter=NVIDIA").
//
// Lifetime: the object create() returns owns Dawn's instance. If it is garbage-collected while a device
// lives, the next event processing crashes (SIGSEGV or futex errors), so it is returned as keepAlive and also
// held in this module. Holding it may keep Node's event loop alive: call releaseWebGPU() (or destroy the
// device) when done.

export interface WebGPUDeviceOptions {
  /** Default 'high-performance'. */
  powerPreference?: GPUPowerPreference;
  /** Features to enable when the adapter has them (missing ones are left out silently). */
  features?: GPUFeatureName[];
  /** Extra flags for Dawn's create() (Node only), e.g. ['backend=vulkan']; also RNNKIT_DAWN_FLAGS. */
  dawnFlags?: string[];
  /** Use .cache/lavapipe: 'auto' (default), true (even with a system loader) or false. Node only. */
  lavapipe?: boolean | 'auto';
  /** Device label. */
  label?: string;
}

export interface WebGPUDeviceResult {
  device: GPUDevice;
  /** One line: description, vendor, architecture, device, the backend's source (e.g. "lavapipe"). */
  adapterInfo: string;
  /** The navigator.gpu-like object from create() (or navigator.gpu): keep it reachable while `device` lives. */
  keepAlive: unknown;
}

/** The limits raised to the adapter's maximum. */
const RAISED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
] as const;

/** Every create() object handed out (Dawn's instance dies with it), and the live devices made from them. */
const keepAlive: unknown[] = [];
const devices: GPUDevice[] = [];

/** Destroys the devices this module made and drops its references to Dawn's instances (lets Node exit). */
export function releaseWebGPU(): void {
  for (const d of devices.splice(0)) {
    try {
      d.destroy();
    } catch {
      // already destroyed or lost
    }
  }
  keepAlive.length = 0;
}

interface GpuLike {
  requestAdapter(options?: GPURequestAdapterOptions): Promise<GPUAdapter | null>;
}

interface NodeSetup {
  gpu: GpuLike;
  /** 'lavapipe (.cache/lavapipe)', 'system Vulkan', ... */
  source: string;
}

export async function requestWebGPUDevice(opts: WebGPUDeviceOptions = {}): Promise<WebGPUDeviceResult> {
  const nav = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator;
  let gpu: GpuLike;
  let source: string;
  if (nav?.gpu) {
    gpu = nav.gpu;
    source = 'navigator.gpu';
  } else if (typeof process !== 'undefined' && process.versions?.node) {
    ({ gpu, source } = await nodeGpu(opts));
  } else {
    throw new Error('no WebGPU: this JavaScript engine has no navigator.gpu');
  }
  keepAlive.push(gpu);

  const powerPreference = opts.powerPreference ?? 'high-performance';
  let adapter = await gpu.requestAdapter({ powerPreference });
  if (!adapter) adapter = await gpu.requestAdapter();
  if (!adapter) {
    throw new Error(
      source === 'navigator.gpu'
        ? 'no WebGPU adapter: navigator.gpu.requestAdapter() returned null (WebGPU disabled or no usable GPU)'
        : `no WebGPU adapter: ${await diagnoseNode(source)}`,
    );
  }

  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number | undefined>)[name];
    if (typeof v === 'number') requiredLimits[name] = v;
  }
  const requiredFeatures = (opts.features ?? []).filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({
    label: opts.label ?? 'rnnkit',
    requiredLimits,
    requiredFeatures,
  });
  devices.push(device);
  // Forget a device once it is lost or destroyed (and with it, once none is left, nothing keeps Dawn).
  void device.lost.then(() => {
    const i = devices.indexOf(device);
    if (i >= 0) devices.splice(i, 1);
  });

  return { device, adapterInfo: describeAdapter(adapter, source), keepAlive: gpu };
}

function describeAdapter(adapter: GPUAdapter, source: string): string {
  const info = adapter.info as GPUAdapterInfo | undefined;
  const parts: string[] = [];
  if (info) {
    if (info.description) parts.push(info.description);
    const more = [
      info.vendor && `vendor ${info.vendor}`,
      info.architecture && `arch ${info.architecture}`,
      info.device && `device ${info.device}`,
    ].filter(Boolean);
    if (more.length) parts.push(`(${more.join(', ')})`);
  }
  if ((adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter || (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter) {
    parts.push('[fallback adapter]');
  }
  parts.push(`via ${source}`);
  return parts.join(' ');
}

// ---------------------------------------------------------------------------------------------- Node ----

const RTLD_NOW = 2;
const RTLD_GLOBAL = 0x100;
const RTLD_NODELETE = 0x1000; // glibc; not in os.constants.dlopen

/** The lavapipe set-up by scripts/setup-lavapipe.sh, if there is one. */
interface Lavapipe {
  dir: string;
  icd: string;
  preload: string[];
}

let dawnModule: { create(flags: string[]): GpuLike; globals: Record<string, unknown> } | null = null;
let lavapipeUsed: Lavapipe | null = null;

async function nodeGpu(opts: WebGPUDeviceOptions): Promise<NodeSetup> {
  const path = await import('node:path');
  if (!dawnModule) {
    // Before dawn.node loads: the driver's environment and libraries. 'auto' takes lavapipe only when the
    // user named no driver and the system has no Vulkan loader or no driver file (a GPU machine with a
    // .cache/lavapipe left over keeps its GPU).
    const userIcd = Boolean(process.env.VK_DRIVER_FILES || process.env.VK_ICD_FILENAMES);
    const want = opts.lavapipe ?? envLavapipe();
    const lvp = want === false ? null : await findLavapipe();
    if (lvp && (want === true || (!userIcd && (!libraryFound('libvulkan.so.1') || !(await systemIcds()).length)))) {
      for (const lib of lvp.preload) loadLibrary(lib, true);
      process.env.VK_DRIVER_FILES = lvp.icd;
      process.env.VK_ICD_FILENAMES = lvp.icd;
      lavapipeUsed = lvp;
    } else if (lvp && !libraryFound('libvulkan.so.1')) {
      // The user chose the driver; still lend them the unpacked loader.
      const loader = lvp.preload.find((p) => path.basename(p) === 'libvulkan.so.1');
      if (loader) loadLibrary(loader, true);
    }
    const name = 'webgpu'; // not a literal: bundlers must not follow it
    try {
      dawnModule = (await import(name)) as typeof dawnModule;
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      if ((e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && /'webgpu'/.test(msg)) {
        throw new Error("the webgpu backend needs the 'webgpu' package (Dawn for Node): npm install webgpu");
      }
      throw new Error(`the 'webgpu' package could not be loaded: ${msg}`);
    }
    // GPUBufferUsage, GPUMapMode, GPUShaderStage, ... as in a browser.
    const g = globalThis as Record<string, unknown>;
    for (const [k, v] of Object.entries(dawnModule!.globals)) if (!(k in g)) g[k] = v;
  }
  let source = 'system Vulkan';
  if (lavapipeUsed) source = `lavapipe (${lavapipeUsed.dir})`;
  else if (process.env.VK_DRIVER_FILES || process.env.VK_ICD_FILENAMES) source = 'Vulkan driver from VK_DRIVER_FILES';
  const flags = [...(opts.dawnFlags ?? []), ...(process.env.RNNKIT_DAWN_FLAGS ?? '').split(/\s+/).filter(Boolean)];
  return { gpu: dawnModule!.create(flags), source };
}

function envLavapipe(): boolean | 'auto' {
  const v = process.env.RNNKIT_LAVAPIPE;
  if (v === '0' || v === 'false') return false;
  if (v === '1' || v === 'true') return true;
  return 'auto';
}

/** The package root: the nearest folder above this file with a package.json. */
async function packageRoot(): Promise<string | null> {
  const { fileURLToPath } = await import('node:url');
  const fs = await import('node:fs');
  const path = await import('node:path');
  let dir: string;
  try {
    dir = path.dirname(fileURLToPath(import.meta.url));
  } catch {
    return null;
  }
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

async function findLavapipe(): Promise<Lavapipe | null> {
  const fs = await import('node:fs');
  const path = await import('node:path');
  let dir = process.env.RNNKIT_LAVAPIPE_DIR;
  if (!dir) {
    const root = await packageRoot();
    if (!root) return null;
    dir = path.join(root, '.cache', 'lavapipe');
  }
  const icd = path.join(dir, 'lvp_icd.json');
  if (!fs.existsSync(icd)) return null;
  let preload: string[] = [];
  const list = path.join(dir, 'preload.txt');
  if (fs.existsSync(list)) {
    preload = fs.readFileSync(list, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
  } else {
    // An older set-up: at least the loader beside the driver.
    try {
      const lib = JSON.parse(fs.readFileSync(icd, 'utf8')).ICD.library_path as string;
      preload = [path.join(path.dirname(lib), 'libvulkan.so.1')];
    } catch {
      // unreadable json: the loader will say so
    }
  }
  return { dir, icd, preload: preload.filter((p) => fs.existsSync(p)) };
}

/**
 * dlopen(file) through process.dlopen; false when the dynamic linker cannot load it (not found, or a
 * dependency missing). `keep`: RTLD_GLOBAL | RTLD_NODELETE, so it stays loaded after process.dlopen's
 * "Module did not self-register" (it is no Node addon); otherwise it is unloaded again (a probe).
 */
function loadLibrary(file: string, keep = false): boolean {
  try {
    process.dlopen({ exports: {} } as NodeJS.Module, file, RTLD_NOW | (keep ? RTLD_GLOBAL | RTLD_NODELETE : 0));
    return true;
  } catch (e) {
    return /did not self-register/.test((e as Error).message);
  }
}

/** Whether the dynamic linker finds `soname` (LD_LIBRARY_PATH, ld.so.cache, system folders, or loaded). */
function libraryFound(soname: string): boolean {
  return loadLibrary(soname);
}

/** The folders the Vulkan loader searches for driver files when VK_DRIVER_FILES is unset. */
async function icdDirs(): Promise<string[]> {
  const path = await import('node:path');
  const os = await import('node:os');
  return [
    ...new Set([
      ...(process.env.XDG_CONFIG_DIRS || '/etc/xdg').split(':').map((d) => path.join(d, 'vulkan/icd.d')),
      '/etc/vulkan/icd.d',
      path.join(os.homedir(), '.local/share/vulkan/icd.d'),
      ...(process.env.XDG_DATA_DIRS || '/usr/local/share:/usr/share').split(':').map((d) => path.join(d, 'vulkan/icd.d')),
      '/usr/share/vulkan/icd.d',
    ]),
  ];
}

/** The driver files (ICD json) installed on the system. */
async function systemIcds(): Promise<string[]> {
  const fs = await import('node:fs');
  const path = await import('node:path');
  return (await icdDirs()).flatMap((d) => {
    try {
      return fs.readdirSync(d).filter((f) => f.endsWith('.json')).map((f) => path.join(d, f));
    } catch {
      return [];
    }
  });
}

/** Why Dawn found no adapter: the missing library or driver, as precisely as can be told from outside. */
async function diagnoseNode(source: string): Promise<string> {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const lvp = lavapipeUsed ? null : await findLavapipe();
  const fix = lvp
    ? `set RNNKIT_LAVAPIPE=1 to use the software driver in ${lvp.dir}`
    : 'run scripts/setup-lavapipe.sh for a software driver';
  if (process.platform !== 'linux') {
    return `Dawn found no ${process.platform === 'darwin' ? 'Metal' : 'D3D12/Vulkan'} adapter`;
  }
  if (!libraryFound('libvulkan.so.1')) {
    return `libvulkan.so.1 not found (install libvulkan1, or ${fix})`;
  }
  const listed = [process.env.VK_DRIVER_FILES, process.env.VK_ICD_FILENAMES]
    .filter((v): v is string => Boolean(v))
    .flatMap((v) => v.split(':'))
    .filter(Boolean);
  let icds: string[];
  if (listed.length) {
    icds = [...new Set(listed)].filter((f) => fs.existsSync(f));
    if (!icds.length) {
      return `the Vulkan driver file(s) in VK_DRIVER_FILES/VK_ICD_FILENAMES do not exist: ${[...new Set(listed)].join(', ')}`;
    }
  } else {
    icds = await systemIcds();
    if (!icds.length) {
      return `no Vulkan driver (no ICD json in ${(await icdDirs()).join(', ')}, and VK_DRIVER_FILES is unset): install a GPU's Vulkan driver or mesa-vulkan-drivers 24+, or ${fix}`;
    }
  }
  const notes = icds.map((f) => {
    try {
      const lib = JSON.parse(fs.readFileSync(f, 'utf8')).ICD?.library_path as string | undefined;
      if (!lib) return `${f}: no ICD.library_path`;
      // A library_path with a slash is a path (relative to the json's folder); without, a soname.
      const file = lib.includes('/') ? path.resolve(path.dirname(f), lib) : lib;
      const ok = lib.includes('/') ? fs.existsSync(file) && loadLibrary(file) : libraryFound(lib);
      return `${f} -> ${lib}${ok ? '' : ' (cannot be loaded: missing file or dependency)'}`;
    } catch (e) {
      return `${f}: unreadable (${(e as Error).message})`;
    }
  });
  return (
    `the Vulkan loader and driver(s) were found but Dawn accepted none (${source}; ${notes.join('; ')}). ` +
    `Dawn needs Vulkan 1.1 with its required features (Debian 12's lavapipe, Mesa 22, is too old): ${fix}`
  );
}

// ------------------------------------------------------------------------------------------- smoke test ----

/**
 * One compute shader, y = 2x on n floats, written, run and read back: whether the device really computes.
 * Used by test/webgpu-smoke.test.ts and scripts/gpu/run-bench.sh. Returns the largest error and the time.
 */
export async function runSmokeShader(device: GPUDevice, n = 1000): Promise<{ n: number; maxError: number; ms: number }> {
  const t0 = performance.now();
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (i % 4096) * 0.5 - 7;
  const bytes = n * 4;
  // Workgroups of 64 over a 2-D grid (a dimension holds at most maxComputeWorkgroupsPerDimension, 65535).
  const groups = Math.ceil(n / 64);
  const gx = Math.min(groups, device.limits.maxComputeWorkgroupsPerDimension);
  const gy = Math.ceil(groups / gx);
  device.pushErrorScope('validation');
  device.pushErrorScope('out-of-memory');
  const module = device.createShaderModule({
    code: /* wgsl */ `
      @group(0) @binding(0) var<storage, read> x: array<f32>;
      @group(0) @binding(1) var<storage, read_write> y: array<f32>;
      @compute @workgroup_size(64)
      fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>) {
        let i = id.x + id.y * ng.x * 64u;
        if (i < arrayLength(&x)) { y[i] = 2.0 * x[i]; }
      }`,
  });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const xb = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const yb = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const rb = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    device.queue.writeBuffer(xb, 0, x);
    const bind = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: xb } },
        { binding: 1, resource: { buffer: yb } },
      ],
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(gx, gy);
    pass.end();
    enc.copyBufferToBuffer(yb, 0, rb, 0, bytes);
    device.queue.submit([enc.finish()]);
    const errors = [await device.popErrorScope(), await device.popErrorScope()].filter((e) => e);
    if (errors.length) throw new Error(`smoke shader: ${errors.map((e) => e!.message).join('; ')}`);
    await rb.mapAsync(GPUMapMode.READ);
    const y = new Float32Array(rb.getMappedRange().slice(0));
    rb.unmap();
    let maxError = 0;
    for (let i = 0; i < n; i++) maxError = Math.max(maxError, Math.abs(y[i] - 2 * x[i]));
    return { n, maxError, ms: performance.now() - t0 };
  } finally {
    xb.destroy();
    yb.destroy();
    rb.destroy();
  }
}
