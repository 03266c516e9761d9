#!/bin/sh
# PyTorch side of the standard workload, with the environment the engine notes require:
# OMP_WAIT_POLICY=passive (otherwise torch's two thread pools spin against each other and
# 2 threads run ~3.7x slower than 1) and Debian's /usr/bin/python3 (where python3-torch lives).
# Usage: bench/torch_bench.sh [--threads N] [--config NAME|all] [--seconds S] [--json] [--data FILE]
export OMP_WAIT_POLICY=passive
threads=1
prev=
for a in "$@"; do
  case "$a" in --threads=*) threads="${a#--threads=}" ;; esac
  [ "$prev" = "--threads" ] && threads="$a"
  prev="$a"
done
# OMP_NUM_THREADS sizes the pool up front; with a list (1,2) use the largest.
n="$(echo "$threads" | tr "," "\n" | sort -n | tail -1)"
export OMP_NUM_THREADS="$n" OPENBLAS_NUM_THREADS="$n"
exec /usr/bin/python3 "$(dirname "$0")/torch_bench.py" "$@"
