#!/usr/bin/env bash
# The guide on real Kubernetes (make demo-cluster, root): the cluster of scripts/cluster with
# netpol installed from deploy/netpol.yaml, WordPress + MariaDB from this chart on two nodes,
# then the guide's own commands. Each step checks what the guide says happens and exits 1
# when it does not (scripts/cluster/check-guide.sh runs it so).
#
#   examples/wordpress-chart/demo.sh [--keep]   (--keep: leave the application installed)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
source "$root/scripts/cluster/lib.sh"
keep=0
[ "${1:-}" = --keep ] && keep=1

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
run() { printf '$ %s\n' "$*"; "$@"; }
fail() { echo "demo-cluster: $*" >&2; exit 1; }

export KUBECONFIG="$KUBECONFIG_ADMIN"
export PATH="$NPC_BIN:$PATH"
cd "$root/examples/wordpress"

if ! "$root/scripts/cluster/cluster.sh" status >/dev/null 2>&1; then
  say "A real Kubernetes $(kubectl version --client -o json | jq -r .clientVersion.gitVersion) cluster on this machine: 2 nodes"
  "$root/scripts/cluster/cluster.sh" up
fi
if ! kubectl -n kube-system get ds netpol-node >/dev/null 2>&1; then
  say "Install the network plugin: netpol"
  run kubectl apply -f "$root/deploy/netpol.yaml"
  kubectl -n kube-system rollout status ds/netpol-node --timeout=300s
  kubectl -n kube-system rollout status deploy/coredns --timeout=300s
fi

cleanup() {
  [ $keep -eq 1 ] && return
  kubectl delete networkpolicy default-deny db-frontend-allow --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete pod np-client --ignore-not-found --wait=false >/dev/null 2>&1 || true
  helm uninstall np-test >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup

wp_pod() { kubectl get pods -l app=np-test-wordpress -o jsonpath='{.items[0].metadata.name}'; }
wp_restarts() { kubectl get pods -l app=np-test-wordpress -o jsonpath='{.items[0].status.containerStatuses[0].restartCount}'; }
wp_ready() { [ "$(kubectl get pods -l app=np-test-wordpress -o jsonpath='{.items[0].status.containerStatuses[0].ready}')" = true ]; }
# The client pod's try at MariaDB through its Service (CoreDNS, ClusterIP, kube-proxy's DNAT).
client_reaches_db() { kubectl exec np-client -- /agnhost connect np-test-mariadb:3306 --timeout=3s >/dev/null 2>&1; }
wait_until() {  # wait_until SECONDS WHAT CMD...
  local limit="$1" what="$2"; shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || fail "timed out after ${limit}s waiting for: $what"
    sleep 2
  done
}

say "Step 1: deploy WordPress + MariaDB with Helm (MariaDB on npc-n1, WordPress on npc-n2)"
run helm install np-test "$here" --set mariadb.nodeSelector.kubernetes\\.io/hostname=npc-n1 \
  --set wordpress.nodeSelector.kubernetes\\.io/hostname=npc-n2 --wait --timeout 5m
agnhost="$(ctr -a "$NPC_RUN/n1/containerd.sock" -n k8s.io images ls -q | awk '/\/agnhost:/ && !n++')"
kubectl run np-client --image="$agnhost" --image-pull-policy=Never --restart=Never \
  --overrides='{"spec":{"nodeName":"npc-n2"}}' --command -- /agnhost pause >/dev/null
kubectl wait --for=condition=Ready pod/np-client --timeout=120s >/dev/null
run kubectl get pods -o wide
wp_ready || fail "WordPress is not ready before any policy"
client_reaches_db || fail "the client cannot reach MariaDB before any policy"
echo "  a client pod reaches MariaDB (np-test-mariadb:3306): every pod may talk to every pod"

say "Step 2: restrict traffic between pods"
run cat policy-deny-all.yaml
run kubectl create -f policy-deny-all.yaml
before="$(wp_restarts)"
echo "  ... after some time WordPress fails its liveness probe (it cannot reach MariaDB) and is restarted"
wait_until 180 "WordPress restarted by its liveness probe" bash -c "[ \$(kubectl get pods -l app=np-test-wordpress -o jsonpath='{.items[0].status.containerStatuses[0].restartCount}') -gt $before ]"
run kubectl get pods
client_reaches_db && fail "the client still reaches MariaDB under default-deny"
echo "  the client pod cannot reach MariaDB either"

say "Step 3: allow traffic only from the WordPress pod to the MariaDB pod"
run cat policy-wordpress-mariadb.yaml
run kubectl create -f policy-wordpress-mariadb.yaml
wait_until 180 "WordPress ready again" wp_ready
run kubectl get pods
client_reaches_db && fail "the client reaches MariaDB although only WordPress may"
echo "  WordPress works again ($(wp_restarts) restarts); the client pod still cannot reach MariaDB"
say "The guide, on real Kubernetes: done"
