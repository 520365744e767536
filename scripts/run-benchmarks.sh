#!/usr/bin/env bash
# Runs the engine and rendering benchmarks (Google Benchmark, 3 repetitions,
# medians) and the peak-memory probe, and writes their raw output to build/bench-results/.
# docs/BENCHMARKS.md quotes these numbers with this command.
set -euo pipefail
build=${1:?build dir}
out="$(cd "$(dirname "$0")/.." && pwd)/build/bench-results"
mkdir -p "$out"
echo "== engine_benchmark (medians of 3 repetitions)"
"$build/bench/engine_benchmark" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_min_time=0.5 --benchmark_out="$out/engine_benchmark.json" --benchmark_out_format=json \
  | grep -E '^(BM_|-|Benchmark)' | grep -v -E '_(mean|stddev|cv) ' | tee "$out/engine_benchmark.txt"
echo
echo "== engine_memory (10k pods, 1k policies)"
"$build/bench/engine_memory" 10000 1000 | tee "$out/engine_memory.txt"
echo "== engine_memory (1k pods, 100 policies)"
"$build/bench/engine_memory" 1000 100 | tee -a "$out/engine_memory.txt"
echo
echo "== render_benchmark (the dataplane's per-pod work; medians of 3 repetitions)"
"$build/bench/render_benchmark" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  | grep -E '^(BM_|-|Benchmark)' | grep -v -E '_(mean|stddev|cv) ' | tee "$out/render_benchmark.txt"
echo
echo "== decode_benchmark (a 10k-pod LIST as the API returns it)"
"$build/bench/decode_benchmark" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  | grep -E '^(BM_|-|Benchmark)' | grep -v -E '_(mean|stddev|cv) ' | tee "$out/decode_benchmark.txt"
echo
echo "== json_input_benchmark (netpol's JSON input against python's json.load, 10k pods; medians of 5)"
"$build/bench/json_input_benchmark" 10000 5 | tee "$out/json_input_benchmark.txt"
echo
echo "== ipam_benchmark (the CNI plugin's allocation with 100 pods; medians of 5 repetitions)"
"$build/bench/ipam_benchmark" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  | grep -E '^(BM_|-|Benchmark)' | grep -v -E '_(mean|stddev|cv) ' | tee "$out/ipam_benchmark.txt"
echo
if [ "$(id -u)" -eq 0 ]; then
  echo "== backend_benchmark (a new pod through the real kernel, in a netns of its own; medians of 5)"
  "$build/bench/backend_benchmark" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
    | grep -E '^(BM_|-|Benchmark)' | grep -v -E '_(mean|stddev|cv) ' | tee "$out/backend_benchmark.txt"
else
  echo "== backend_benchmark needs root (a network namespace of its own): not run"
fi
echo
echo "results in $out"
