#!/usr/bin/env bash
# Mesa's lavapipe (a software Vulkan driver) and the Vulkan loader, unpacked into .cache/lavapipe/ so that the
# `webgpu` package (Dawn) finds a WebGPU adapter on a machine without a GPU. Correctness only: about 1 GFLOP/s.
#
# No root, no system change: Debian's packages are fetched with `apt-get download` through a private apt
# configuration (.cache/apt/: its own sources.list with bookworm-backports, its own package lists and cache)
# and unpacked with `dpkg -x`. Bookworm's own lavapipe (Mesa 22.3) is too old for Dawn; Mesa 25 from
# bookworm-backports works. Only the packages this system lacks (or has too old) are fetched: the Depends of
# each package are followed and checked against the installed versions (dpkg-query), and `ldd` checks the
# result at the end.
#
# Writes .cache/lavapipe/lvp_icd.json (absolute path of libvulkan_lvp.so), preload.txt and env.sh, and
# prints the environment to use:
#   VK_DRIVER_FILES=<abs>/.cache/lavapipe/lvp_icd.json  LD_LIBRARY_PATH=<abs>/.cache/lavapipe/root/usr/lib/<triplet>
# (src/backend/webgpu-device.ts does without LD_LIBRARY_PATH: it preloads the unpacked libraries itself.)
#
# Idempotent: does nothing when .cache/lavapipe/lvp_icd.json exists and its libraries resolve; FORCE=1 redoes
# it. Environment: LAVAPIPE_DIR (default .cache/lavapipe), DEBIAN_MIRROR (default http://deb.debian.org),
# DEBIAN_SUITE (default bookworm). Exit status non-zero when it could not be done (the message says why).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${LAVAPIPE_DIR:-$ROOT/.cache/lavapipe}"
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
APTDIR="$(dirname "$DEST")/apt"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org}"
SUITE="${DEBIAN_SUITE:-bookworm}"
ICD="$DEST/lvp_icd.json"

say() { echo "setup-lavapipe: $*" >&2; }
die() { say "$*"; exit 1; }

for tool in apt-get apt-cache dpkg dpkg-deb dpkg-query ldd; do
  command -v "$tool" >/dev/null 2>&1 || die "needs $tool (a Debian-based system); not found"
done
ARCH="$(dpkg --print-architecture)"
case "$ARCH" in
  amd64) TRIPLET=x86_64-linux-gnu ;;
  arm64) TRIPLET=aarch64-linux-gnu ;;
  *) die "unsupported architecture $ARCH" ;;
esac
LIBDIR="$DEST/root/usr/lib/$TRIPLET"
LVP="$LIBDIR/libvulkan_lvp.so"

print_env() {
  cat >"$DEST/env.sh" <<EOF
# source this file: the unpacked lavapipe driver and Vulkan loader (written by scripts/setup-lavapipe.sh)
export VK_DRIVER_FILES="$ICD"
export VK_ICD_FILENAMES="$ICD"
export LD_LIBRARY_PATH="$LIBDIR\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
EOF
  say "ready. Environment to use (also in $DEST/env.sh):"
  echo "VK_DRIVER_FILES=$ICD"
  echo "VK_ICD_FILENAMES=$ICD"
  echo "LD_LIBRARY_PATH=$LIBDIR"
}

# Libraries the driver and the loader need that the dynamic linker cannot find.
missing_libs() {
  LD_LIBRARY_PATH="$LIBDIR" ldd "$LVP" "$LIBDIR/libvulkan.so.1" 2>&1 | awk '/not found/ {print $1}' | sort -u
}

if [ -z "${FORCE:-}" ] && [ -f "$ICD" ] && [ -f "$DEST/preload.txt" ] && [ -f "$LVP" ] && [ -f "$LIBDIR/libvulkan.so.1" ] &&
  [ -z "$(missing_libs)" ]; then
  say "already set up in $DEST"
  print_env
  exit 0
fi

START=$SECONDS
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/etc/sources.list.d" \
  "$APTDIR/etc/preferences.d" "$APTDIR/debs"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$KEYRING" ] || die "$KEYRING not found (package debian-archive-keyring)"
{
  for s in "$SUITE" "$SUITE-updates" "$SUITE-backports"; do
    echo "deb [signed-by=$KEYRING] $MIRROR/debian $s main"
  done
  echo "deb [signed-by=$KEYRING] $MIRROR/debian-security $SUITE-security main"
} >"$APTDIR/etc/sources.list"
APTOPT=(
  -o "Dir::Etc::sourcelist=$APTDIR/etc/sources.list"
  -o "Dir::Etc::sourceparts=$APTDIR/etc/sources.list.d"
  -o "Dir::Etc::preferencesparts=$APTDIR/etc/preferences.d"
  -o "Dir::State::Lists=$APTDIR/lists"
  -o "Dir::Cache=$APTDIR/cache"
  -o "APT::Sandbox::User=$(id -un)"
  -o "Debug::NoLocking=1"
  -o "Acquire::Retries=2"
  -o "Acquire::http::Timeout=30"
)
say "apt-get update (private lists in $APTDIR)"
apt-get "${APTOPT[@]}" -qq update >"$APTDIR/update.log" 2>&1 ||
  die "apt-get update failed (see $APTDIR/update.log): $(tail -3 "$APTDIR/update.log" | tr '\n' ' ')"

# The version of $1 to fetch so that it satisfies "$2 $3" (empty: any): the default candidate when it does,
# else the highest one that does (from any suite, backports included).
pick_version() {
  local name="$1" op="$2" want="$3" v
  v="$(apt-cache "${APTOPT[@]}" policy "$name" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')"
  if [ -n "$v" ] && [ "$v" != "(none)" ] && { [ -z "$op" ] || dpkg --compare-versions "$v" "$op" "$want"; }; then
    echo "$v"
    return
  fi
  apt-cache "${APTOPT[@]}" madison "$name" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' |
    while read -r v; do
      if [ -z "$op" ] || dpkg --compare-versions "$v" "$op" "$want"; then
        echo "$v"
        break
      fi
    done
}

# True when the installed version of $1 satisfies "$2 $3" (empty: installed at all).
installed_ok() {
  local name="$1" op="$2" want="$3" st
  st="$(dpkg-query -W -f='${Status}|${Version}' "$name:$ARCH" 2>/dev/null ||
    dpkg-query -W -f='${Status}|${Version}' "$name" 2>/dev/null || true)"
  case "$st" in
    "install ok installed|"*) ;;
    *) return 1 ;;
  esac
  [ -z "$op" ] || dpkg --compare-versions "${st#*|}" "$op" "$want"
}

declare -A SEEN=()
QUEUE=("mesa-vulkan-drivers|>=|25" "libvulkan1||")
FETCHED=()
rm -f "$APTDIR/debs"/*.deb
while [ ${#QUEUE[@]} -gt 0 ]; do
  item="${QUEUE[0]}"
  QUEUE=("${QUEUE[@]:1}")
  IFS='|' read -r name op want <<<"$item"
  [ -n "${SEEN[$name]:-}" ] && continue
  SEEN[$name]=1
  # The two packages asked for are always fetched (lavapipe 25 and a loader of our own); their dependencies
  # only when this system lacks them or has them too old.
  if [ "$name" != mesa-vulkan-drivers ] && [ "$name" != libvulkan1 ] && installed_ok "$name" "$op" "$want"; then
    continue
  fi
  ver="$(pick_version "$name" "$op" "$want")"
  [ -n "$ver" ] || die "no version of $name satisfies '$op $want' in $SUITE(-backports)"
  say "fetch $name=$ver"
  (cd "$APTDIR/debs" && apt-get "${APTOPT[@]}" -qq download "$name=$ver" >/dev/null 2>"$APTDIR/download.err") ||
    die "apt-get download $name=$ver failed: $(cat "$APTDIR/download.err")"
  deb="$(ls -t "$APTDIR/debs"/"${name}"_*.deb | head -1)"
  FETCHED+=("$deb")
  # Depends (and Pre-Depends): "a (>= 1), b | c, d:any" -> the first alternative of each.
  deps="$(dpkg-deb -f "$deb" Pre-Depends Depends | sed -e 's/^[A-Za-z-]*: //' | tr '\n' ',')"
  IFS=',' read -ra parts <<<"$deps"
  for part in "${parts[@]}"; do
    part="${part%%|*}"
    part="$(echo "$part" | xargs)"
    [ -n "$part" ] || continue
    dname="${part%% *}"
    dname="${dname%%:*}"
    dop=""
    dwant=""
    if [[ "$part" =~ \(([\<\>=]+)\ *([^\)]+)\) ]]; then
      dop="${BASH_REMATCH[1]}"
      dwant="$(echo "${BASH_REMATCH[2]}" | xargs)"
      [ "$dop" = "<" ] && dop="<<"
      [ "$dop" = ">" ] && dop=">>"
    fi
    QUEUE+=("$dname|$dop|$dwant")
  done
done

say "unpack ${#FETCHED[@]} packages into $DEST/root"
rm -rf "$DEST/root"
mkdir -p "$DEST/root"
for deb in "${FETCHED[@]}"; do
  dpkg -x "$deb" "$DEST/root"
done
[ -f "$LVP" ] || die "libvulkan_lvp.so not in the unpacked packages ($LVP)"
[ -f "$LIBDIR/libvulkan.so.1" ] || die "libvulkan.so.1 not in the unpacked packages"

missing="$(missing_libs)"
[ -z "$missing" ] || die "still missing after unpacking: $(echo "$missing" | tr '\n' ' ')"

# preload.txt: the unpacked libraries the driver and the loader use, dependencies first (a library's in-tree
# dependencies are a strict subset of its dependents', so sorting by their count orders them). A process that
# cannot set LD_LIBRARY_PATH before it starts (node) dlopens these by absolute path, in this order, so that the
# later dlopen("libvulkan.so.1") and the driver's own dependencies resolve to them by soname.
: >"$DEST/preload.txt.tmp"
for lib in $(LD_LIBRARY_PATH="$LIBDIR" ldd "$LVP" "$LIBDIR/libvulkan.so.1" | awk -v d="$LIBDIR/" 'index($3, d) == 1 {print $3}' | sort -u) "$LIBDIR/libvulkan.so.1"; do
  n="$(LD_LIBRARY_PATH="$LIBDIR" ldd "$lib" | awk -v d="$LIBDIR/" 'index($3, d) == 1' | wc -l)"
  echo "$n $lib"
done | sort -n -k1,1 | awk '!seen[$2]++ {print $2}' >"$DEST/preload.txt.tmp"
mv "$DEST/preload.txt.tmp" "$DEST/preload.txt"

# The ICD json the Vulkan loader reads (VK_DRIVER_FILES): the package's own, with an absolute library path.
api="1.4"
pkgjson="$(ls "$DEST/root/usr/share/vulkan/icd.d"/lvp_icd.*.json 2>/dev/null | head -1 || true)"
if [ -n "$pkgjson" ]; then
  api="$(sed -n 's/.*"api_version": *"\([^"]*\)".*/\1/p' "$pkgjson" | head -1)"
fi
cat >"$ICD.tmp" <<EOF
{
    "ICD": {
        "api_version": "${api:-1.4}",
        "library_path": "$LVP"
    },
    "file_format_version": "1.0.0"
}
EOF
mv "$ICD.tmp" "$ICD"
say "done in $((SECONDS - START)) s"
print_env
