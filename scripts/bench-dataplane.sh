#!/usr/bin/env bash
# Dataplane benchmark (root): new-connection rate and single-stream TCP
# throughput between two routed pods, with
#   A      no table at all (baseline A),
#   B      only `ct state established,related accept` (baseline B, the floor of any
#          stateful plugin),
#   C<N>   netpol enforcing N policies (0, 100, 1000, 10000) of a 10k-pod cluster,
#          100 pods local to the node (bench/dataplane_benchmark.cpp),
#   T<N>   as C1000, plus N ClusterNetworkPolicies (100, 1000) that select the
#          benchmark pods and one that passes the measured flow through the Admin
#          tier to the NetworkPolicies (scripts/bench-tiers.sh measures these
#          round-robin, which a loaded machine needs),
# measured interleaved (A B A C0 A C100 ...) for ROUNDS rounds; medians and ratios
# are printed and written to build/bench-results/dataplane.txt. Then programming
# times (initial build with 1k policies, one pod added / removed).
# A config ending in @before (T1000@before) programs with BEFORE's
# dataplane_benchmark instead (BEFORE=path/to/other/build): the layout of
# another build measured in the same run. TIMING=0 skips the programming times.
# Every load loop is time-bounded; everything created is removed at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/bench-configs.sh"
build=${1:-$root/build/release}
rounds=${ROUNDS:-3}
seconds=${SECONDS_PER_RUN:-3}
out="$root/build/bench-results"
mkdir -p "$out"
prefix="npd$$"
node="$prefix-node"
netload="$build/bench/netload"
tool="$build/bench/dataplane_benchmark"
netpol="$build/bin/netpol"
server_pid=""

cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  "$root/tests/e2e/lab.sh" down "$prefix"
}
trap cleanup EXIT

"$root/tests/e2e/lab.sh" up "$prefix" 198.18.200.1 198.18.200.2
ip netns exec "$prefix-p2" timeout 3600 "$netload" serve 5201 3500 &
server_pid=$!
sleep 0.5

configure() {
  "$netpol" enforce --remove --netns "$node" >/dev/null
  ip netns exec "$node" nft delete table inet bench 2>/dev/null || true
  bench_program "$node" "$1" "$tool" "$out/dataplane-programming.txt"
}

measure() {
  local cfg=$1
  configure "$cfg"
  local crr stream
  crr=$(ip netns exec "$prefix-p1" "$netload" crr 198.18.200.2 5201 "$seconds" 8)
  stream=$(ip netns exec "$prefix-p1" "$netload" stream 198.18.200.2 5201 "$seconds")
  echo "$cfg $crr $stream" | tee -a "$out/dataplane-raw.txt"
}

: >"$out/dataplane-raw.txt"
: >"$out/dataplane-programming.txt"
echo "config conn_per_s gbit_per_s"
for round in $(seq "$rounds"); do
  for cfg in ${CONFIGS:-B C0 C100 C1000 C10000 T100 T1000}; do
    measure A
    measure "$cfg"
  done
done

median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
col() { awk -v c="$1" -v k="$2" '$1 == c {print $k}' "$out/dataplane-raw.txt" | median; }

{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ), $rounds rounds, ${seconds}s per run, medians"
  a_crr=$(col A 2); a_st=$(col A 3); b_crr=$(col B 2); b_st=$(col B 3)
  b_crr=${b_crr:-$a_crr}  # CONFIGS without B: ratios against A only
  printf "%-8s %12s %10s %14s %14s %14s\n" config conn/s Gbit/s "conn vs A" "conn vs B" "Gbit vs A"
  for cfg in A ${CONFIGS:-B C0 C100 C1000 C10000 T100 T1000}; do
    c=$(col "$cfg" 2); s=$(col "$cfg" 3)
    [ -z "$c" ] && continue
    printf "%-8s %12.0f %10.2f %14.3f %14.3f %14.3f\n" "$cfg" "$c" "$s" \
      "$(echo "$c / $a_crr" | bc -l)" "$(echo "$c / $b_crr" | bc -l)" "$(echo "$s / $a_st" | bc -l)"
  done
  echo
  echo "# programming (compile + one transaction) when switching to each C<N>:"
  cat "$out/dataplane-programming.txt"
  [ "${TIMING:-1}" = 0 ] && exit 0
  echo
  echo "# programming times:"
  "$netpol" enforce --remove --netns "$node" >/dev/null
  "$tool" timing "$node" 1000
  "$netpol" enforce --remove --netns "$node" >/dev/null
  "$tool" timing "$node" 1000 1000
} | tee "$out/dataplane.txt"
