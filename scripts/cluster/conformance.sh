#!/usr/bin/env bash
# The upstream `[sig-network] Netpol` e2e suite (e2e.test of the pinned Kubernetes) against
# netpol on the running cluster. Skips only [Feature:SCTPConnectivity]: this kernel has no
# SCTP sockets (netpol's own raw-SCTP e2e covers SCTP). Reports (JUnit, JSON) land in
# build/cluster/reports/<label>/.
#
#   conformance.sh LABEL [extra ginkgo flags]      e.g. conformance.sh standalone-nftables
#
# NETPOL_E2E_PROCS (default 4): parallel ginkgo processes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
label="${1:?usage: conformance.sh LABEL [ginkgo flags]}"
shift
report="$NPC_ROOT/build/cluster/reports/$label"
rm -rf "$report"
mkdir -p "$report"
"$NPC_ROOT/scripts/cluster/build-components.sh" e2e
# The suite finds its images locally only under the names it prints. (No `grep -q` or
# `head` in these pipelines: under pipefail the writer's SIGPIPE, when the reader stops
# early, fails the pipeline; it did, for the image check, in one run.)
agnhost="$("$NPC_BIN/e2e.test" --list-images 2>/dev/null | awk '/^registry\.k8s\.io\/e2e-test-images\/agnhost:/ && !n++')"
step "Netpol e2e ($label): images it asks for: $agnhost"
if ! "$NPC_BIN/ctr" -a "$NPC_RUN/n1/containerd.sock" -n k8s.io images ls -q | grep -x "$agnhost" >/dev/null; then
  die "the nodes do not have $agnhost (scripts/cluster/images.sh agnhost, then import)"
fi
start=$SECONDS
set +e
"$NPC_BIN/ginkgo" --procs="${NETPOL_E2E_PROCS:-4}" --timeout=3h --no-color \
  --focus='\[sig-network\] Netpol' --skip='SCTPConnectivity' \
  --json-report=report.json --junit-report=junit.xml --output-dir="$report" "$@" \
  "$NPC_BIN/e2e.test" -- \
  --kubeconfig="$KUBECONFIG_ADMIN" --provider=local --dump-logs-on-failure=false \
  --report-dir="$report" 2>&1 | tee "$report/output.log"
rc=${PIPESTATUS[0]}
set -e
echo "$((SECONDS - start))" >"$report/seconds"
step "Netpol e2e ($label): exit $rc in $((SECONDS - start)) s; report in $report"
exit "$rc"
