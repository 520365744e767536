#!/usr/bin/env bash
# The real-cluster tier (`make test-cluster`, root): netpol's image, then for each of the two
# installs users make
#   standalone  kubectl apply -f deploy/netpol.yaml, kube-proxy in nftables mode
#   chained     helm install (after Debian's bridge + host-local), kube-proxy in iptables mode
# a cluster in that shape, netpol installed, the agent's least privilege checked, the guide's
# policies enforced across nodes, the upstream `[sig-network] Netpol` suite, the
# network-policy-api ClusterNetworkPolicy conformance suite (conformance-cnp.sh), and the
# faults of check-faults.sh (control plane, agent, a node's runtime restarted) under probing.
# A cluster already up (make cluster-up) is used for the first mode when it has its shape.
# Every step's time is printed; the cluster of the last mode is left up (make cluster-down).
#
#   test-cluster.sh [standalone] [chained]     (default: both)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || die "test-cluster runs as root (nodes are network namespaces)"
here="$(dirname "$0")"
modes=("$@")
[ "${#modes[@]}" -eq 0 ] && modes=(standalone chained)
t0=$SECONDS
results=()

record() { results+=("$(printf '%-44s %6s s  %s' "$1" "$2" "$3")"); }

run_step() {
  local name="$1"; shift
  local s=$SECONDS
  step "$name"
  if "$@"; then
    record "$name" $((SECONDS - s)) PASS
  else
    record "$name" $((SECONDS - s)) FAIL
    failed=1
  fi
}

cluster_shape() {
  [ -f "$NPC_STATE/cni" ] || return 1
  echo "$(cat "$NPC_STATE/cni")/$(cat "$NPC_STATE/proxy-mode")"
}

failed=0
run_step "image: netpold and netpol-cni run inside it" "$here/test-image.sh"
for mode in "${modes[@]}"; do
  case "$mode" in
    standalone) want="none/nftables"; up_flags=(--cni none --proxy-mode nftables) ;;
    chained) want="bridge/iptables"; up_flags=(--cni bridge --proxy-mode iptables) ;;
    *) die "unknown mode '$mode' (standalone, chained)" ;;
  esac
  if [ "$(cluster_shape 2>/dev/null || true)" != "$want" ] || ! "$here/cluster.sh" status >/dev/null 2>&1; then
    "$here/cluster.sh" status >/dev/null 2>&1 && "$here/cluster.sh" down
    run_step "$mode: cluster up (${up_flags[*]})" "$here/cluster.sh" up "${up_flags[@]}"
  fi
  run_step "$mode: install netpol" "$here/install-netpol.sh" "$mode"
  run_step "$mode: the guide's policies across nodes" "$here/check-guide.sh"
  run_step "$mode: upstream Netpol e2e" "$here/conformance.sh" "$mode-$(cat "$NPC_STATE/proxy-mode")"
  run_step "$mode: network-policy-api ClusterNetworkPolicy conformance" \
    "$here/conformance-cnp.sh" "cnp-$mode-$(cat "$NPC_STATE/proxy-mode")"
  run_step "$mode: faults survived under probing" "$here/check-faults.sh"
  run_step "$mode: the agent's RBAC is exactly what it uses" "$here/check-rbac.sh"
done

echo
printf '%s\n' "${results[@]}"
echo "test-cluster: $((SECONDS - t0)) s"
[ "$failed" -eq 0 ] && echo "$(( ${#results[@]} )) passed, 0 failed" && exit 0
echo "$(printf '%s\n' "${results[@]}" | grep -c PASS) passed, $(printf '%s\n' "${results[@]}" | grep -c FAIL) failed"
exit 1
