#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR/tests/fuzz for SECONDS each, starting
# from its checked-in seed corpus (copied, so the repository stays unchanged).
# A crash fails the run and leaves the reproducer in build/fuzz-artifacts/.
set -euo pipefail
build=${1:?build dir}
seconds=${2:-15}
root=$(cd "$(dirname "$0")/.." && pwd)
artifacts="$root/build/fuzz-artifacts"
mkdir -p "$artifacts"
targets=$(find "$build/tests/fuzz" -maxdepth 1 -type f -name '*_fuzz' -perm -u+x | sort)
[ -n "$targets" ] || { echo "run-fuzzers: no fuzz targets in $build/tests/fuzz" >&2; exit 1; }
for target in $targets; do
  name=$(basename "$target" _fuzz)
  work=$(mktemp -d)
  cp -r "$root/tests/fuzz/corpus/$name/." "$work/"
  echo "fuzz: $name for ${seconds}s ($(ls "$work" | wc -l) seeds)"
  "$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/$name-" -print_final_stats=0 "$work" >"$artifacts/$name.log" 2>&1 || {
      echo "fuzz: $name FAILED; see $artifacts/$name.log" >&2
      tail -40 "$artifacts/$name.log" >&2
      rm -rf "$work"
      exit 1
    }
  grep -E '^(#[0-9]+|Done)' "$artifacts/$name.log" | tail -1 || true
  rm -rf "$work"
done
echo "fuzz: all targets ran clean"
