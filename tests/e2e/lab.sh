#!/usr/bin/env bash
# Test topology in the routed model (Calico-like), in network namespaces of its
# own; the root namespace's routes and firewall are never touched.
#
#   lab.sh up PREFIX ADDR[,ADDR6] ... [ext:ADDR ...]
#                                       node netns PREFIX-node and one pod netns per
#                                       address argument (PREFIX-p1, -p2, ...), each with a
#                                       veth to the node (host side PREFIX-h1, ...), /32 and
#                                       /128 host routes, link-local gateway, proxy ARP/NDP;
#                                       ext: addresses live in PREFIX-ext, a namespace behind
#                                       the node's uplink that plays "outside the cluster"
#   lab.sh down PREFIX                  deletes exactly the namespaces named PREFIX-*
#
# PREFIX must be short (interface names are at most 15 bytes) and unique per test.
set -euo pipefail
cmd=${1:?up|down}
prefix=${2:?prefix}
node="$prefix-node"

if [ "$cmd" = down ]; then
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^${prefix}-(node|ext|p[0-9]+)$" || true); do
    ip netns del "$ns"
  done
  exit 0
fi

[ "$cmd" = up ] || { echo "usage: lab.sh up|down PREFIX ..." >&2; exit 2; }
shift 2
ip netns add "$node"
ip -n "$node" link set lo up
ip netns exec "$node" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
# The uplink: a veth from the node to PREFIX-ext, the outside world of the lab.
# Proxy ARP answers only for addresses routed through another interface, so the
# gateway address is routed through it too.
ext="$prefix-ext"
ip netns add "$ext"
ip -n "$ext" link set lo up
ip -n "$node" link add "$prefix-up" type veth peer name eth0 netns "$ext"
ip -n "$node" link set "$prefix-up" up
ip -n "$ext" link set eth0 up
ip netns exec "$node" sysctl -qw "net.ipv4.conf.$prefix-up.proxy_arp=1" "net.ipv4.neigh.$prefix-up.proxy_delay=0"
ip -n "$node" route add 169.254.1.1/32 dev "$prefix-up"
ip -n "$ext" route add 198.18.0.0/15 dev eth0 scope link
i=0
for spec in "$@"; do
  if [ "${spec#ext:}" != "$spec" ]; then
    ip -n "$ext" addr add "${spec#ext:}/32" dev eth0
    ip -n "$node" route add "${spec#ext:}/32" dev "$prefix-up" scope link
    continue
  fi
  i=$((i + 1))
  pod="$prefix-p$i"
  host="$prefix-h$i"
  v4=${spec%%,*}
  v6=""
  [ "$spec" != "$v4" ] && v6=${spec#*,}
  ip netns add "$pod"
  ip -n "$pod" link set lo up
  ip -n "$node" link add "$host" type veth peer name eth0 netns "$pod"
  ip -n "$node" link set "$host" address ee:ee:ee:ee:ee:ee
  ip netns exec "$node" sysctl -qw "net.ipv4.conf.$host.proxy_arp=1" "net.ipv4.neigh.$host.proxy_delay=0" \
    "net.ipv6.conf.$host.proxy_ndp=1"
  ip -n "$node" addr add fe80::1/64 dev "$host" nodad
  ip -n "$node" link set "$host" up
  ip -n "$pod" link set eth0 up
  ip -n "$node" route add "$v4/32" dev "$host" scope link
  ip -n "$pod" addr add "$v4/32" dev eth0
  ip -n "$pod" route add 169.254.1.1/32 dev eth0 scope link
  ip -n "$pod" route add default via 169.254.1.1 dev eth0
  if [ -n "$v6" ]; then
    ip -n "$node" -6 route add "$v6/128" dev "$host"
    ip -n "$pod" -6 addr add "$v6/128" dev eth0 nodad
    ip -n "$pod" -6 route add default via fe80::1 dev eth0
  fi
done
