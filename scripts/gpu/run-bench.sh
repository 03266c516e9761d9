#!/usr/bin/env bash
# The WebGPU benchmark on a GPU machine that may have no Node and no Vulkan loader.
#
# How it gets there: scripts/gpu/pack.sh, run on the development machine, makes .cache/gpu/rnnkit-gpu.tar.xz
# (~30 MiB, ignored by git): node's binary, Debian's Vulkan loader (libvulkan.so.1 from libvulkan1, unpacked
# with dpkg -x), and the built repo (dist/, data/, package.json, the production node_modules with webgpu's
# linux-x64 dawn.node). The device tool copies the working tree plus `carry` paths (64 MiB at most), so:
#   run(command="bash scripts/gpu/run-bench.sh --config S-lstm --seconds 5",
#       carry=[".cache/gpu/rnnkit-gpu.tar.xz"])
#
# What it does: unpacks the tarball (into $RNNKIT_GPU_DIR, default .cache/gpu/unpacked), points the Vulkan
# loader at the NVIDIA driver (VK_DRIVER_FILES: the nvidia_icd.json found under
# /usr/local/nvidia/share/vulkan/icd.d, /usr/share/vulkan/icd.d, /etc/vulkan/icd.d, /usr/lib*/..., or, when
# the container has the driver's libGLX_nvidia.so.0 but no json, one written here as NVIDIA's own is), and
# LD_LIBRARY_PATH at the packed loader; prints the adapter info and runs the smoke shader (y = 2x),
# then `node dist/src/cli/main.js bench --backend webgpu --json "$@"`.
#
# Environment: RNNKIT_ICD=/path/to/icd.json uses that driver instead (e.g. lavapipe on a CPU machine:
# RNNKIT_ICD=.cache/lavapipe/lvp_icd.json; the folder of its library goes on LD_LIBRARY_PATH too);
# RNNKIT_GPU_PACK=/path/to/rnnkit-gpu.tar.xz; RNNKIT_GPU_TESTS=1 runs the webgpu tests on the GPU first;
# RNNKIT_KERNELS=1 times the kernels (bench --kernels) before the benchmark; RNNKIT_BENCH=0 skips the
# benchmark; RNNKIT_GEMM_TILES=64,32 (say) limits the gemm tiles the backend may use. Exit status: the smoke
# shader's failure (no adapter, wrong result) is 2; the benchmark's own status otherwise.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PACK="${RNNKIT_GPU_PACK:-$ROOT/.cache/gpu/rnnkit-gpu.tar.xz}"
DIR="${RNNKIT_GPU_DIR:-$ROOT/.cache/gpu/unpacked}"
say() { echo "run-bench: $*" >&2; }

[ -f "$PACK" ] || { say "no $PACK: make it with scripts/gpu/pack.sh and carry it"; exit 1; }
rm -rf "$DIR"
mkdir -p "$DIR"
t0=$SECONDS
xz -dc "$PACK" | tar -C "$DIR" -xf - || { say "cannot unpack $PACK"; exit 1; }
G="$DIR/rnnkit-gpu"
say "unpacked in $((SECONDS - t0)) s (node $(cat "$G/NODE_VERSION"), commit $(cat "$G/COMMIT" 2>/dev/null))"
NODE="$G/bin/node"

# The machine.
command -v nvidia-smi >/dev/null 2>&1 &&
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/run-bench: gpu: /' >&2

# The Vulkan driver.
find_lib() { # a library's path: ldconfig's cache, then the usual folders (containers mount them oddly)
  local name="$1" p
  p="$(ldconfig -p 2>/dev/null | awk -v n="$name" '$1 == n && /x86-64/ {print $NF; exit}')"
  [ -n "$p" ] && { echo "$p"; return; }
  for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/nvidia/lib64 /usr/local/nvidia/lib \
    /usr/lib/x86_64-linux-gnu/nvidia/current /run/nvidia/driver/usr/lib/x86_64-linux-gnu; do
    [ -e "$d/$name" ] && { echo "$d/$name"; return; }
  done
}
ICD="${RNNKIT_ICD:-}"
if [ -z "$ICD" ]; then
  # /usr/local/nvidia/share/...: where this workplace's GPU machines mount the driver's json (device tool README)
  for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd*.json \
    /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json \
    /usr/local/share/vulkan/icd.d/nvidia_icd*.json /usr/lib/x86_64-linux-gnu/nvidia/*/nvidia_icd.json \
    /usr/lib/x86_64-linux-gnu/nvidia/nvidia_icd.json /usr/local/nvidia/icd.d/nvidia_icd.json \
    /etc/glvnd/../vulkan/icd.d/nvidia_icd.json; do
    [ -f "$f" ] && { ICD="$f"; break; }
  done
  if [ -z "$ICD" ]; then
    glx="$(find_lib libGLX_nvidia.so.0)"
    if [ -n "$glx" ]; then
      ver="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)"
      ICD="$DIR/nvidia_icd.json"
      # As the NVIDIA driver writes it (its Vulkan driver lives in libGLX_nvidia).
      printf '{\n  "file_format_version": "1.0.1",\n  "ICD": {\n    "library_path": "%s",\n    "api_version": "1.3.0"\n  }\n}\n' "$glx" >"$ICD"
      say "no nvidia_icd.json on this machine; wrote $ICD -> $glx (driver ${ver:-?})"
    else
      say "no NVIDIA Vulkan driver: no nvidia_icd.json and no libGLX_nvidia.so.0 (a container started without"
      say "the 'graphics' driver capability mounts only CUDA's libraries). Present:"
      for l in libcuda.so.1 libnvidia-ml.so.1 libGLX_nvidia.so.0 libnvidia-glcore.so libnvidia-glvkspirv.so libEGL_nvidia.so.0; do
        say "  $l: $(find_lib "$l" || true)"
      done
      ls /usr/lib/x86_64-linux-gnu 2>/dev/null | grep -i nvidia | head -30 | sed 's/^/run-bench:   /' >&2
    fi
  fi
fi
LIBS="$G/lib"
if [ -n "$ICD" ]; then
  ICD="$(cd "$(dirname "$ICD")" && pwd)/$(basename "$ICD")"
  lib="$(sed -n 's/.*"library_path": *"\([^"]*\)".*/\1/p' "$ICD" | head -1)"
  case "$lib" in /*) LIBS="$LIBS:$(dirname "$lib")" ;; esac
  say "driver: $ICD -> $lib"
  export VK_DRIVER_FILES="$ICD" VK_ICD_FILENAMES="$ICD"
fi
export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export RNNKIT_LAVAPIPE=0 # the packed app has no .cache/lavapipe; never fall back silently
say "VK_DRIVER_FILES=${VK_DRIVER_FILES:-} LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

# The adapter and the smoke shader.
cd "$G/app"
"$NODE" --input-type=module -e '
import { requestWebGPUDevice, runSmokeShader, releaseWebGPU } from "./dist/src/backend/webgpu-device.js";
let r;
try { r = await requestWebGPUDevice(); } catch (e) { console.log("run-bench: " + e.message); process.exit(2); }
console.log("run-bench: adapter: " + r.adapterInfo);
const l = r.device.limits;
console.log(`run-bench: limits: maxStorageBufferBindingSize ${l.maxStorageBufferBindingSize}, maxBufferSize ${l.maxBufferSize}, maxComputeWorkgroupStorageSize ${l.maxComputeWorkgroupStorageSize}, maxStorageBuffersPerShaderStage ${l.maxStorageBuffersPerShaderStage}, maxComputeInvocationsPerWorkgroup ${l.maxComputeInvocationsPerWorkgroup}`);
const f = [...r.device.features].sort().join(" ");
console.log("run-bench: features: " + f);
const s = await runSmokeShader(r.device, 1000);
const big = await runSmokeShader(r.device, 1 << 24);
console.log(`run-bench: smoke y = 2x: n ${s.n} max error ${s.maxError} (${s.ms.toFixed(1)} ms); n ${big.n} max error ${big.maxError} (${big.ms.toFixed(1)} ms)`);
releaseWebGPU();
process.exit(s.maxError === 0 && big.maxError === 0 ? 0 : 2);
'
smoke=$?
[ $smoke -eq 0 ] || { say "smoke shader failed (status $smoke)"; exit 2; }

# RNNKIT_GPU_TESTS=1: the webgpu backend's correctness on this GPU first (every PyTorch parity fixture,
# the gradient checks against the float64 reference, training/sampling/resume equal to the reference).
if [ "${RNNKIT_GPU_TESTS:-0}" = 1 ]; then
  say "tests: node --test dist/test/parity.test.js dist/test/webgpu.test.js"
  "$NODE" --test --test-reporter=dot dist/test/parity.test.js dist/test/webgpu.test.js || say "tests FAILED (status $?)"
fi

# RNNKIT_KERNELS=1: one dispatch's cost and each LSTM multiply of M-lstm/L-lstm per gemm tile size (~15 s on
# a GPU), to pick RNNKIT_GEMM_TILES and to see whether dispatches or FLOPs bound a step.
if [ "${RNNKIT_KERNELS:-0}" = 1 ]; then
  say "kernels: node dist/src/cli/main.js bench --backend webgpu --kernels --json"
  "$NODE" dist/src/cli/main.js bench --backend webgpu --kernels --json || say "kernels FAILED (status $?)"
fi

if [ "${RNNKIT_BENCH:-1}" != 0 ]; then
  say "bench: node dist/src/cli/main.js bench --backend webgpu --json $*"
  "$NODE" dist/src/cli/main.js bench --backend webgpu --json "$@"
  exit $?
fi
