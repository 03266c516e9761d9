#!/usr/bin/env bash
# Packs everything scripts/gpu/run-bench.sh needs on a GPU machine that may have no Node and no Vulkan loader
# into one file, .cache/gpu/rnnkit-gpu.tar.xz (ignored by git; must stay under 64 MiB, what the device tool
# carries):
#   rnnkit-gpu/bin/node          this machine's node binary (xz -9 takes its ~95 MB to ~25 MB)
#   rnnkit-gpu/lib/libvulkan.so.1  Debian's Vulkan loader (libvulkan1), unpacked by scripts/setup-lavapipe.sh
#   rnnkit-gpu/app/              package.json, dist/ (built here, with the tests), data/, test/fixtures, and the production node_modules
#                                (commander, ..., and webgpu with only its linux-x64 dawn.node)
# Usage: scripts/gpu/pack.sh [OUT]   (builds first when dist/ is missing; PACK_XZ_LEVEL=-6 packs faster)
# Then, for example: the device tool's run with carry [".cache/gpu/rnnkit-gpu.tar.xz"] and the command
# `bash scripts/gpu/run-bench.sh --config S-lstm --seconds 5`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
OUT="${1:-$ROOT/.cache/gpu/rnnkit-gpu.tar.xz}"
LIMIT=$((64 * 1024 * 1024))
say() { echo "pack: $*" >&2; }

[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || { say "packs linux-x64 only (this is $(uname -s)-$(uname -m))"; exit 1; }
[ -f dist/src/cli/main.js ] && [ -f dist/src/backend/webgpu-device.js ] || { say "building"; npm run build >&2; }
[ -f node_modules/webgpu/dist/linux-x64/dawn.node ] || { say "node_modules/webgpu missing: npm install"; exit 1; }
LOADER="$ROOT/.cache/lavapipe/root/usr/lib/x86_64-linux-gnu/libvulkan.so.1"
[ -f "$LOADER" ] || bash scripts/setup-lavapipe.sh >/dev/null
[ -f "$LOADER" ] || { say "no Vulkan loader to pack ($LOADER)"; exit 1; }

STAGE="$ROOT/.cache/gpu/stage"
rm -rf "$STAGE"
mkdir -p "$STAGE/rnnkit-gpu/bin" "$STAGE/rnnkit-gpu/lib" "$STAGE/rnnkit-gpu/app"
cp -L "$(command -v node)" "$STAGE/rnnkit-gpu/bin/node"
cp -L "$LOADER" "$STAGE/rnnkit-gpu/lib/libvulkan.so.1"
# The production dependency tree (webgpu is an optional dependency, so it is in it), as folders.
mapfile -t MODS < <(npm ls --omit=dev --all --parseable 2>/dev/null | sed -n "s|^$ROOT/||p" | grep '^node_modules/' | sort -u)
printf '%s\n' "${MODS[@]}" | grep -qx node_modules/webgpu || { say "webgpu not in the production tree"; exit 1; }
tar -C "$ROOT" -cf - \
  --exclude='node_modules/webgpu/dist/darwin-*' --exclude='node_modules/webgpu/dist/win32-*' \
  --exclude='node_modules/webgpu/dist/linux-arm64' --exclude='node_modules/webgpu/build' \
  --exclude='node_modules/.cache' \
  package.json dist data test/fixtures "${MODS[@]}" | tar -C "$STAGE/rnnkit-gpu/app" -xf -
git -C "$ROOT" rev-parse HEAD >"$STAGE/rnnkit-gpu/COMMIT" 2>/dev/null || true
node --version >"$STAGE/rnnkit-gpu/NODE_VERSION"

mkdir -p "$(dirname "$OUT")"
tar -C "$STAGE" -cf - rnnkit-gpu | xz -T2 "${PACK_XZ_LEVEL:--9}" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
rm -rf "$STAGE"
size=$(stat -c %s "$OUT")
say "$OUT: $size bytes ($((size / 1024 / 1024)) MiB)"
[ "$size" -lt "$LIMIT" ] || { say "over 64 MiB: the device tool will not carry it"; exit 1; }
