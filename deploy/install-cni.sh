#!/bin/sh
# The netpol DaemonSet's init container: installs netpol-cni on the node and
# puts it in the node's CNI configuration.
#
#   NETPOL_CNI_MODE=chained     (default) netpol-cni is appended to the node's
#                               existing conflist (the first *.conflist in the
#                               CNI config dir, by name), policy only: the
#                               existing plugin keeps wiring and addressing pods.
#   NETPOL_CNI_MODE=standalone  netpol wires pods itself: writes 10-netpol.conflist
#                               with NETPOL_POD_CIDRS (comma-separated) as ranges;
#                               when that is empty, with the node's spec.podCIDRs,
#                               read from the API as the pod's service account
#                               (NODE_NAME names the node).
#
# Paths (the host's, as mounted): CNI_BIN_DIR (/host/opt/cni/bin), CNI_CONF_DIR
# (/host/etc/cni/net.d). Idempotent: running it again changes nothing.
set -eu
bin_dir=${CNI_BIN_DIR:-/host/opt/cni/bin}
conf_dir=${CNI_CONF_DIR:-/host/etc/cni/net.d}
plugin=${NETPOL_CNI_PLUGIN:-/usr/local/bin/netpol-cni}
mode=${NETPOL_CNI_MODE:-chained}
socket=${NETPOL_AGENT_SOCKET:-/run/netpol/agent.sock}
state=${NETPOL_STATE_DIR:-/var/lib/netpol/cni}

# The node's spec.podCIDRs, comma-separated, read with the pod's service account.
node_pod_cidrs() {
  sa=${NETPOL_SERVICE_ACCOUNT_DIR:-/var/run/secrets/kubernetes.io/serviceaccount}
  : "${NODE_NAME:?standalone mode without NETPOL_POD_CIDRS needs NODE_NAME (the downward API)}"
  : "${KUBERNETES_SERVICE_HOST:?no KUBERNETES_SERVICE_HOST: not running in a pod?}"
  host=$KUBERNETES_SERVICE_HOST
  case "$host" in *:*) host="[$host]" ;; esac
  node=$(curl -sS --fail --max-time 10 --cacert "$sa/ca.crt" \
    -H "Authorization: Bearer $(cat "$sa/token")" \
    "https://$host:${KUBERNETES_SERVICE_PORT:-443}/api/v1/nodes/$NODE_NAME") || {
    echo "install-cni: cannot read node $NODE_NAME from the API" >&2
    exit 1
  }
  printf '%s' "$node" | jq -r '(.spec.podCIDRs // [.spec.podCIDR // empty]) | join(",")'
}

mkdir -p "$bin_dir" "$conf_dir"
# Atomically: a runtime may start the plugin at any moment.
cp "$plugin" "$bin_dir/.netpol-cni.tmp"
chmod 0755 "$bin_dir/.netpol-cni.tmp"
mv -f "$bin_dir/.netpol-cni.tmp" "$bin_dir/netpol-cni"

ours=$(jq -n --arg socket "$socket" --arg state "$state" \
  '{type: "netpol-cni", agentSocket: $socket, stateDir: $state}')

case "$mode" in
  chained)
    conf=$(find "$conf_dir" -maxdepth 1 -name '*.conflist' ! -name '.*' | sort | head -n 1)
    if [ -z "$conf" ]; then
      echo "install-cni: no *.conflist in $conf_dir to chain after; install the node's CNI first" \
        "or use NETPOL_CNI_MODE=standalone" >&2
      exit 1
    fi
    # Drop an earlier netpol entry, then append ours last: it sees prevResult.
    jq --argjson ours "$ours" '.plugins = ([.plugins[] | select(.type != "netpol-cni")] + [$ours])' \
      "$conf" > "$conf.netpol.tmp"
    mv -f "$conf.netpol.tmp" "$conf"
    echo "install-cni: netpol-cni chained last in $conf"
    ;;
  standalone)
    if [ -z "${NETPOL_POD_CIDRS:-}" ]; then
      NETPOL_POD_CIDRS=$(node_pod_cidrs)
    fi
    if [ -z "$NETPOL_POD_CIDRS" ]; then
      echo "install-cni: standalone mode needs this node's pod ranges: node ${NODE_NAME:-?} has no" \
        "spec.podCIDRs (kube-controller-manager --allocate-node-cidrs) and NETPOL_POD_CIDRS is empty" >&2
      exit 1
    fi
    ranges=$(printf '%s' "$NETPOL_POD_CIDRS" | jq -R 'split(",") | map(select(length > 0))')
    jq -n --argjson ours "$ours" --argjson ranges "$ranges" \
      '{cniVersion: "1.0.0", name: "netpol", plugins: [$ours + {ipam: {ranges: $ranges}}]}' \
      > "$conf_dir/.10-netpol.conflist.tmp"
    mv -f "$conf_dir/.10-netpol.conflist.tmp" "$conf_dir/10-netpol.conflist"
    echo "install-cni: $conf_dir/10-netpol.conflist written"
    ;;
  *)
    echo "install-cni: NETPOL_CNI_MODE must be chained or standalone, not $mode" >&2
    exit 1
    ;;
esac
