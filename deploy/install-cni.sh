#!/bin/sh
# The netpol DaemonSet's init container: installs netpol-cni on the node and
# puts it in the node's CNI configuration.
#
#   NETPOL_CNI_MODE=chained     (default) netpol-cni is appended to the node's
#                               existing conflist (the first *.conflist in the
#                               CNI config dir, by name), policy only: the
#                               existing plugin keeps wiring and addressing pods.
#   NETPOL_CNI_MODE=standalone  netpol wires pods itself: writes 10-netpol.conflist
#                               with NETPOL_POD_CIDRS (comma-separated) as ranges.
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
    : "${NETPOL_POD_CIDRS:?standalone mode needs NETPOL_POD_CIDRS (this node's pod ranges)}"
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
