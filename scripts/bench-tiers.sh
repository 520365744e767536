#!/usr/bin/env bash
# New-connection rate with ClusterNetworkPolicy tiers (issue 17, point 7), made
# to survive a shared, loaded machine: every configuration gets a lab of its
# own (tests/e2e/lab.sh, the two benchmark pods 198.18.200.1 -> .2:5201),
# programmed once, and the load then runs round-robin over the labs, a short
# run each, so one round measures every configuration within seconds and the
# ratios are taken per round (their medians printed), not between runs minutes
# apart. Root.
#
#   scripts/bench-tiers.sh BUILD            CONFIGS="A B T100 T1000" ROUNDS=7 SECONDS_PER_RUN=2
#   BEFORE=other/build CONFIGS="A B T1000 T1000@before" scripts/bench-tiers.sh BUILD
#
# Configurations: A no table; B only `ct state established,related accept`
# (the conntrack-only baseline); C<N> netpol enforcing the 10k-pod cluster's N
# NetworkPolicies alone; T<N> netpol enforcing the 10k-pod cluster with
# 1,000 NetworkPolicies and N ClusterNetworkPolicies (`dataplane_benchmark
# program NETNS 1000 N`); T<N>@before the same programmed by BEFORE's
# dataplane_benchmark (another build's layout). Programming time and peak RSS
# of each are printed too. Everything created is removed at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/bench-configs.sh"
build=${1:-$root/build/release}
rounds=${ROUNDS:-7}
seconds=${SECONDS_PER_RUN:-2}
configs=${CONFIGS:-A B T100 T1000}
out="$root/build/bench-results"
mkdir -p "$out"
netload="$build/bench/netload"
prefixes=()
servers=()

cleanup() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  for p in "${prefixes[@]}"; do "$root/tests/e2e/lab.sh" down "$p"; done
}
trap cleanup EXIT

: >"$out/tiers-programming.txt"
i=0
declare -A lab
for cfg in $configs; do
  prefix="nt$$-$i"
  i=$((i + 1))
  prefixes+=("$prefix")
  lab[$cfg]=$prefix
  "$root/tests/e2e/lab.sh" up "$prefix" 198.18.200.1 198.18.200.2
  ip netns exec "$prefix-p2" timeout 7200 "$netload" serve 5201 7000 &
  servers+=($!)
  bench_program "$prefix-node" "$cfg" "$build/bench/dataplane_benchmark" "$out/tiers-programming.txt"
done
sleep 0.5

: >"$out/tiers-raw.txt"
for round in $(seq "$rounds"); do
  for cfg in $configs; do
    crr=$(ip netns exec "${lab[$cfg]}-p1" "$netload" crr 198.18.200.2 5201 "$seconds" 8)
    echo "$round $cfg $crr" | tee -a "$out/tiers-raw.txt"
  done
done

median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ), $rounds rounds of ${seconds}s per configuration, round-robin; medians"
  printf "%-14s %10s %16s %16s\n" config conn/s "vs A (per round)" "vs B (per round)"
  for cfg in $configs; do
    c=$(awk -v c="$cfg" '$2 == c {print $3}' "$out/tiers-raw.txt" | median)
    ratio() {
      awk -v c="$cfg" -v b="$1" '$2 == c {x[$1] = $3} $2 == b {y[$1] = $3}
        END {for (r in x) if (r in y && y[r] > 0) print x[r] / y[r]}' "$out/tiers-raw.txt" | median
    }
    printf "%-14s %10.0f %16s %16s\n" "$cfg" "$c" "$(ratio A)" "$(ratio B)"
  done
  echo
  echo "# programming (compile + one transaction, from an empty table):"
  cat "$out/tiers-programming.txt"
} | tee "$out/tiers.txt"
