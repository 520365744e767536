# The dataplane benchmarks' configurations (sourced by bench-dataplane.sh and
# bench-tiers.sh, which say what each measures):
#   A      no table at all
#   B      only `ct state established,related accept` (the conntrack-only baseline)
#   C<N>   netpol enforcing N NetworkPolicies of the 10k-pod cluster
#   T<N>   netpol enforcing 1,000 NetworkPolicies and N ClusterNetworkPolicies
#   <cfg>@before  the same, programmed by the dataplane_benchmark of $BEFORE
#
#   bench_program NODE_NETNS CONFIG TOOL OUT
# puts CONFIG in force in NODE_NETNS (TOOL: this build's dataplane_benchmark) and
# appends "CONFIG <programming times>" (and max_rss_kb for T) to OUT.
bench_program() {
  local node=$1 cfg=$2 tool=$3 out=$4 base=$2
  if [[ $cfg == *@before ]]; then
    tool="${BEFORE:?BEFORE=build dir for @before configs}/bench/dataplane_benchmark"
    base=${cfg%@before}
  fi
  case "$base" in
    A) ;;
    B) ip netns exec "$node" nft -f - <<'NFT'
table inet bench {
  chain forward {
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
  }
}
NFT
       ;;
    C*) echo -n "$cfg " >>"$out"
        "$tool" program "$node" "${base#C}" >>"$out" ;;
    T*) echo -n "$cfg " >>"$out"
        /usr/bin/time -f "  max_rss_kb=%M" -a -o "$out" "$tool" program "$node" 1000 "${base#T}" >>"$out" ;;
    *) echo "unknown configuration $cfg" >&2; return 2 ;;
  esac
}
