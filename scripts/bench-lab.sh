#!/usr/bin/env bash
# Lab benchmark (root): pod ADD -> policy in force and watch event -> dataplane
# updated latencies (p50, p99), the agent's start (first full program in
# force) and its memory, with a cluster known to the agent
# (bench/lab_benchmark.cpp), at one scale or both:
#   SCALE=10k   10,000 pods in 100 namespaces, 1,000 policies (RUNS runs, default 3)
#   SCALE=100k  100,000 pods in 1,000 namespaces, 10,000 policies (RUNS_100K runs, default 1)
#   SCALE=both  (the default) the 10k runs, then the 100k runs
# BASELINE=OTHER_BUILD/bin also measures that build's netpold (start, memory)
# in the same runs; NETPOL_BENCH_CACHE=DIR keeps each scale's loaded cluster
# in DIR for later runs (bench/lab_benchmark.cpp). Results in
# build/bench-results/lab.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
scale=${SCALE:-both}
runs=${RUNS:-3}
runs_100k=${RUNS_100K:-1}
out="$root/build/bench-results"
mkdir -p "$out"
case "$scale" in
  10k | 100k | both) ;;
  *)
    echo "SCALE must be 10k, 100k or both, not '$scale'" >&2
    exit 2
    ;;
esac
# The kernel tears the previous run's 100 pod namespaces down in the
# background, holding the rtnl lock the next run's plugin needs: let it.
gap() { sleep "${RUN_GAP:-45}"; }
first=1
# scale_runs LABEL COUNT [lab_benchmark flags...]: COUNT runs at one scale.
scale_runs() {
  local label="$1" count="$2" i
  shift 2
  echo "# $(date -u +%Y-%m-%dT%H:%MZ), $count runs of bench/lab_benchmark ${*:-(10k pods, 100 namespaces, 1k policies)}"
  for i in $(seq 1 "$count"); do
    if [ "$first" -eq 0 ]; then gap; fi
    first=0
    echo "## $label run $i"
    "$build/bench/lab_benchmark" "$build/bin" "$@" ${BASELINE:+--baseline="$BASELINE"}
  done
}
{
  if [ "$scale" != 100k ]; then
    scale_runs 10k "$runs"
  fi
  if [ "$scale" != 10k ]; then
    scale_runs 100k "$runs_100k" --pods=100000 --namespaces=1000 --policies=10000
  fi
} | tee "$out/lab.txt"
