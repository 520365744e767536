#!/usr/bin/env bash
# Installs netpol on the running cluster as a user would, and waits until every node's
# netpold is ready:
#
#   install-netpol.sh standalone   kubectl apply -f deploy/netpol.yaml (netpol-cni wires pods)
#   install-netpol.sh chained      helm install netpol deploy/helm/netpol (after the nodes'
#                                  bridge + host-local: cluster.sh up --cni bridge)
#   install-netpol.sh remove       whichever is installed
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export KUBECONFIG="$KUBECONFIG_ADMIN"
kubectl() { "$NPC_BIN/kubectl" "$@"; }

wait_rollout() {
  kubectl -n kube-system rollout status ds/netpol-node --timeout=300s
  # CoreDNS needs the pod network: it becomes ready once netpol (or the bridge) wires pods.
  kubectl -n kube-system rollout status deploy/coredns --timeout=300s
}

case "${1:-}" in
  standalone)
    step "kubectl apply -f deploy/netpol.yaml"
    kubectl apply -f "$NPC_ROOT/deploy/netpol.yaml"
    wait_rollout
    ;;
  chained)
    # The experimental channel of the ClusterNetworkPolicy CRD (nodes peers, named ports),
    # which the conformance suite needs: asked of Helm, so nothing applies over its CRD.
    step "helm upgrade --install netpol deploy/helm/netpol -n kube-system --set clusterNetworkPolicy.crd=experimental"
    "$NPC_BIN/helm" upgrade --install netpol "$NPC_ROOT/deploy/helm/netpol" -n kube-system \
      --set clusterNetworkPolicy.crd=experimental --wait --timeout 5m
    wait_rollout
    ;;
  remove)
    if "$NPC_BIN/helm" status netpol -n kube-system >/dev/null 2>&1; then
      "$NPC_BIN/helm" uninstall netpol -n kube-system --wait
    else
      kubectl delete -f "$NPC_ROOT/deploy/netpol.yaml" --ignore-not-found --wait
    fi
    ;;
  *)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
