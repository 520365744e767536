#!/usr/bin/env bash
# `make test` (and so CI): every tier, arranged for a 2-core machine. Run after
# scripts/install-deps.sh, as root (the e2e tier needs network namespaces).
#
#   scripts/test.sh            # what `make test` runs
#
# 1. The real Helm's Go build (the chart tests run it) beside the sanitizer
#    tree's compile; then the fast tier, every fuzz target's corpus replayed,
#    and a tenth of the differential runs under AddressSanitizer + UBSan.
# 2. The `ci` tree (the release build at -O1: it compiles ~30% faster, and the
#    tests it runs wait on the kernel, not the CPU): the e2e tier (root,
#    network namespaces, labs, the guide) and the full-length differential tests.
# 3. While the e2e tier runs, at nice 19: the benchmarks built (so they keep
#    compiling; `make bench` runs them in the release tree) and the style
#    checks (module edges, clang-format, clang-tidy: any finding fails). The
#    e2e tests spend most of their time waiting (daemons, probes, the kernel's
#    RCU grace periods), which leaves a core idle; the tests keep their priority.
#    libFuzzer's exploration of the decoders is `make fuzz` (a clang tree of its
#    own: ~290 CPU-seconds to build, more than the idle core has left).
# 4. The ADD/DEL soak (10,000 pod cycles), alone once the CPUs are quiet.
#    Measured: docs/BENCHMARKS.md, "make test".
#
# Each phase's time is printed; a failure prints the failing phase's log.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${JOBS:-$(nproc)}
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

# 2. The ci tree.
cmake --preset ci >/dev/null
cmake --build --preset ci -j "$jobs" --target release-tests
phase_done "ci tree (-O1) built"

# 3. Benchmarks and the style checks in the background, the e2e tier (but the
#    soak) in front.
soak='AgentSoakTest\.TenThousand'
(
  renice -n 19 -p "$BASHPID" >/dev/null
  set -e
  echo "== benchmarks (built, not run: make bench)"
  cmake --build --preset ci -j "$jobs" --target benchmarks
  echo "== module edges (#include and CMake links against docs/ARCHITECTURE.md)"
  python3 scripts/check-module-deps.py
  echo "== clang-format"
  find src tests bench -name '*.h' -o -name '*.cpp' | xargs clang-format-14 --dry-run -Werror
  echo "== clang-tidy"
  find src -name '*.cpp' | xargs -P "$jobs" -n 4 clang-tidy-14 -p build/ci --quiet 2>/dev/null
) >"$logs/bench-and-lint.log" 2>&1 &
checks_pid=$!
background+=("$checks_pid")

tests_ok=true
ctest --preset ci -j "$jobs" -L 'e2e|deep' -E "$soak" || tests_ok=false
phase_done "e2e and deep tiers $($tests_ok && echo passed || echo FAILED)"

checks_ok=true
wait "$checks_pid" || checks_ok=false
if ! $checks_ok; then
  tail -80 "$logs/bench-and-lint.log" >&2
  say "the benchmarks' build or the style checks FAILED (whole log: $logs/bench-and-lint.log)" >&2
else
  phase_done "benchmarks built and style checks passed (the wait for them after the tests)"
fi

# 4. The ADD/DEL soak, alone: each of its 10,000 cycles deletes a veth, which
#    waits on the kernel's RCU grace periods, and those stretch when the CPUs
#    are busy (measured: docs/BENCHMARKS.md, "make test").
ctest --preset ci -R "$soak" || tests_ok=false
phase_done "the ADD/DEL soak $($tests_ok && echo passed || echo FAILED)"
$tests_ok && $checks_ok || exit 1
say "all passed in $((SECONDS - started)) s"
