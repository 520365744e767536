#!/usr/bin/env bash
# Lab benchmark (root): pod ADD -> policy in force and watch event -> dataplane
# updated latencies (p50, p99), and the agent's memory, with 10,000 pods and
# 1,000 policies known to the agent (bench/lab_benchmark.cpp). RUNS runs
# (default 3); results in build/bench-results/lab.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
runs=${RUNS:-3}
out="$root/build/bench-results"
mkdir -p "$out"
{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ), $runs runs of bench/lab_benchmark"
  for i in $(seq 1 "$runs"); do
    echo "## run $i"
    "$build/bench/lab_benchmark" "$build/bin"
    # The kernel tears the previous run's 100 pod namespaces down in the
    # background, holding the rtnl lock the next run's plugin needs: let it.
    if [ "$i" -lt "$runs" ]; then sleep "${RUN_GAP:-45}"; fi
  done
} | tee "$out/lab.txt"
