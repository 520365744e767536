#!/usr/bin/env bash
# The network-policy-api conformance suite (sigs.k8s.io/network-policy-api, pinned in
# cluster/modules/network-policy-api) against netpol on the running cluster: the
# ClusterNetworkPolicy profile with every experimental feature netpol supports (named ports,
# egress node peers). Reports land in build/cluster/reports/<label>/:
#   report.yaml   the suite's own ConformanceReport (policy.networking.k8s.io/v1alpha1)
#   output.log    the test binary's -test.v output;  test.json  the same as go test -json
#
#   conformance-cnp.sh LABEL        e.g. conformance-cnp.sh cnp-standalone-nftables
#
# SCTP: this kernel has no SCTP sockets. The four SCTP-only tests are skipped (reported as
# skipped), the SCTP porter containers are left out of the base pods and each SCTP poke in
# a mixed test is logged "SCTP POKE NOT RUN" (scripts/cluster/cnp-overlay.py says exactly
# what is changed; nothing else is). domainNames has no test in this release's suite.
# The suite needs the experimental ClusterNetworkPolicy CRD (nodes peers, named ports);
# when the installed one is the standard channel, this applies the experimental one from
# deploy/helm/netpol/files (as a user enabling those features would).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
label="${1:?usage: conformance-cnp.sh LABEL}"
report="$NPC_ROOT/build/cluster/reports/$label"
rm -rf "$report"
mkdir -p "$report"
"$NPC_ROOT/scripts/cluster/build-components.sh" cnp

agnhost="$(awk '$1=="image:" && $2 ~ /agnhost:/ {print $2; exit}' \
  "$NPC_ROOT/build/cluster/cnp-suite/network-policy-api/conformance/base/manifests.yaml")"
step "ClusterNetworkPolicy conformance ($label): images it asks for: $agnhost"
for i in $(seq 1 "$NPC_NODES"); do
  if ! "$NPC_BIN/ctr" -a "$NPC_RUN/n$i/containerd.sock" -n k8s.io images ls -q | grep -x "$agnhost" >/dev/null; then
    die "node $i does not have $agnhost (scripts/cluster/images.sh agnhost-cnp, then import)"
  fi
done

crd=clusternetworkpolicies.policy.networking.k8s.io
channel="$(kc get crd "$crd" -o jsonpath='{.metadata.annotations.policy\.networking\.k8s\.io/channel}' 2>/dev/null || true)"
if [ "$channel" != experimental ]; then
  step "the installed ClusterNetworkPolicy CRD is '${channel:-absent}': applying the experimental channel"
  kc apply -f "$NPC_ROOT/deploy/helm/netpol/files/clusternetworkpolicies-experimental.yaml"
  kc wait --for=condition=Established "crd/$crd" --timeout=60s
fi

skip="CNPAdminTierIngressSCTP,CNPAdminTierEgressSCTP,CNPBaselineTierIngressSCTP,CNPBaselineTierEgressSCTP"
features="ClusterNetworkPolicy,ClusterNetworkPolicyNamedPorts,ClusterNetworkPolicyEgressNodePeers"
version="$(git -C "$NPC_ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
start=$SECONDS
set +e
(cd "$report" && KUBECONFIG="$KUBECONFIG_ADMIN" "$NPC_BIN/cnp-conformance.test" \
  -test.v -test.timeout=3h -test.run='^TestConformanceProfiles$' \
  -conformance-profiles=ClusterNetworkPolicy -supported-features="$features" -skip-tests="$skip" \
  -organization=netpol -project=netpol -url=https://netpol.dev -version="$version" \
  -contact=netpol-maintainers \
  -additional-info="scripts/cluster/conformance-cnp.sh on make cluster-up ($label)" \
  -report-output="$report/report.yaml") 2>&1 | tee "$report/output.log"
rc=${PIPESTATUS[0]}
set -e
echo "$((SECONDS - start))" >"$report/seconds"
go tool test2json -p sigs.k8s.io/network-policy-api/conformance <"$report/output.log" >"$report/test.json" || true
step "ClusterNetworkPolicy conformance ($label): exit $rc in $((SECONDS - start)) s; report in $report"
exit "$rc"
