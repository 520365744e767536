#!/usr/bin/env bash
# `make test` (and so CI): every tier, arranged for a 2-core machine. Run after
# scripts/install-deps.sh, as root (the e2e tier needs network namespaces).
#
#   scripts/test.sh            # what `make test` runs
#
# 1. The real Helm's Go build (the chart tests run it) beside the sanitizer
#    tree's compile; then the fast tier and a tenth of the differential runs
#    under AddressSanitizer + UBSan.
# 2. The release tree: the e2e tier (root, network namespaces, labs, the guide)
#    and the full-length differential tests.
# 3. While the e2e tier runs, at nice 19: the benchmarks built (so they keep
#    compiling; `make bench` runs them), the fuzz tree (a short libFuzzer run
#    of every decoder) and the style checks (module edges, clang-format,
#    clang-tidy: any finding fails). The e2e tests spend most of their time waiting (daemons,
#    probes, the kernel's RCU grace periods), which leaves a core idle; the
#    tests keep their priority. Measured: docs/BENCHMARKS.md, "make test".
#
# Each phase's time is printed; a failure prints the failing phase's log.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${JOBS:-$(nproc)}
fuzz_seconds=${FUZZ_SECONDS:-15}
logs="$root/build/test-logs"
mkdir -p "$logs"

started=$SECONDS
phase_started=$SECONDS
say() { echo "make test: $*"; }
phase_done() { say "$1 ($((SECONDS - phase_started)) s)"; phase_started=$SECONDS; }

# Background jobs run in process groups of their own (job control), so that a
# job this script started is stopped whole, children included, if it ends early.
set -m
background=()
stop_background() {
  local pid
  for pid in "${background[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
}
trap stop_background EXIT
trap 'exit 130' INT TERM

# 1. Helm (its first step downloads modules from the proxy) beside the
#    sanitizer build.
scripts/cluster/build-components.sh helm >"$logs/helm.log" 2>&1 &
helm_pid=$!
background+=("$helm_pid")
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$jobs" --target fast-tests
if ! wait "$helm_pid"; then
  cat "$logs/helm.log" >&2
  say "building helm FAILED" >&2
  exit 1
fi
phase_done "helm and the sanitizer tree built"
ctest --preset asan -j "$jobs"
phase_done "fast tier under ASan + UBSan passed"

# 2. The release tree.
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs" --target release-tests
phase_done "release tree built"

# 3. Benchmarks, fuzzing and the style checks in the background, the e2e tier in front.
(
  renice -n 19 -p "$BASHPID" >/dev/null
  set -e
  echo "== benchmarks (built, not run: make bench)"
  cmake --build --preset release -j "$jobs" --target benchmarks
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz -j "$jobs" --target fuzz-targets
  scripts/run-fuzzers.sh build/fuzz "$fuzz_seconds"
  echo "== module edges (#include and CMake links against docs/ARCHITECTURE.md)"
  python3 scripts/check-module-deps.py
  echo "== clang-format"
  find src tests bench -name '*.h' -o -name '*.cpp' | xargs clang-format-14 --dry-run -Werror
  echo "== clang-tidy"
  find src -name '*.cpp' | xargs -P "$jobs" -n 4 clang-tidy-14 -p build/release --quiet 2>/dev/null
) >"$logs/fuzz-and-lint.log" 2>&1 &
checks_pid=$!
background+=("$checks_pid")

tests_ok=true
ctest --preset release -j "$jobs" -L 'e2e|deep' || tests_ok=false
phase_done "e2e and deep tiers $($tests_ok && echo passed || echo FAILED)"

checks_ok=true
wait "$checks_pid" || checks_ok=false
if ! $checks_ok; then
  tail -80 "$logs/fuzz-and-lint.log" >&2
  say "the benchmarks' build, fuzzing or the style checks FAILED (whole log: $logs/fuzz-and-lint.log)" >&2
else
  phase_done "benchmarks built, fuzzing and style checks passed (the wait for them after the tests)"
fi
$tests_ok && $checks_ok || exit 1
say "all passed in $((SECONDS - started)) s"
