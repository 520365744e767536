#!/usr/bin/env bash
# A real Kubernetes cluster on this machine, from the upstream components built by
# build-components.sh: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# CoreDNS, and nodes that are network + mount namespaces with their own containerd, kubelet
# and kube-proxy. The layout is described in lib.sh.
#
#   cluster.sh up [--proxy-mode nftables|iptables] [--cni none|bridge]
#   cluster.sh down        removes everything `up` made, also after a crash
#   cluster.sh status
#   cluster.sh kubeconfig  prints the admin kubeconfig's path (root only: 0600)
#   cluster.sh restart COMPONENT...   e.g. kube-apiserver, etcd, kubelet-n1, containerd-n1
#
# --cni none (default): nodes start without a CNI; netpol installed in standalone mode
# (deploy/netpol.yaml) wires pods. --cni bridge: Debian's bridge + host-local wire pods and
# netpol chains after them (the Helm chart's default).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/pki.sh"

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

check_root() { [ "$(id -u)" -eq 0 ] || die "run as root: the cluster's nodes are network namespaces"; }

# ---- network ---------------------------------------------------------------------------
make_network() {
  ip netns add "$NPC_FABRIC"
  ip -n "$NPC_FABRIC" link set lo up
  ip netns exec "$NPC_FABRIC" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$NPC_FABRIC" link add fabric type bridge
  ip -n "$NPC_FABRIC" addr add "$NPC_FABRIC_IP/24" dev fabric
  ip -n "$NPC_FABRIC" link set fabric up
  local i n
  for i in $(seq 1 "$NPC_NODES"); do
    n="$(node_name "$i")"
    ip netns add "$n"
    ip -n "$n" link set lo up
    ip -n "$NPC_FABRIC" link add "port$i" type veth peer name eth0 netns "$n"
    ip -n "$NPC_FABRIC" link set "port$i" master fabric up
    ip -n "$n" addr add "$(node_ip "$i")/24" dev eth0
    ip -n "$n" link set eth0 up
    ip -n "$n" route add default via "$NPC_FABRIC_IP"
    ip netns exec "$n" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$n" sysctl -qw net.ipv4.conf.all.rp_filter=0
    # Pod traffic between nodes crosses the fabric: each node's pod range routed to it.
    ip -n "$NPC_FABRIC" route add "$(node_pod_cidr "$i")" via "$(node_ip "$i")"
  done
}

# ---- node filesystems --------------------------------------------------------------------
# Paths a node has of its own (bound over the host's inside the node's mount namespace).
# /var/lib/cni is host-local's allocation state and libcni's result cache: shared, the two
# nodes' host-local would write one last_reserved_ip file and each restart its scan from the
# start of its range, handing a just-freed address to the next pod while the bridge's
# neighbour entry for it still names the old pod's MAC (new pods unreachable across nodes for
# 5-10 s, until the entry went stale and was probed).
NODE_PATHS=(/etc/cni/net.d /opt/cni/bin /var/lib/cni /var/lib/kubelet /var/lib/netpol /run/netpol
  /var/log/pods /var/log/containers /run/containerd /var/lib/containerd /run/netns)

make_node_fs() {
  local i="$1" d m p sub
  d="$(node_dir "$i")"
  m="$(node_mntns "$i")"
  mkdir -p "$d"
  for p in "${NODE_PATHS[@]}"; do
    sub="$d/fs$(echo "$p" | tr / _)"
    mkdir -p "$sub"
    if [ ! -e "$p" ]; then
      mkdir -p "$p"
      echo "$p" >>"$NPC_STATE/created-dirs"
    fi
  done
  # The CNI plugins a node has: Debian's reference plugins (loopback, bridge, host-local).
  cp /usr/lib/cni/loopback /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/portmap \
    "$d/fs_opt_cni_bin/"
  # Kernel tunables the kubelet insists on: shown to it inside the node (bound over /proc/sys
  # there) instead of changing the host's.
  local tun="$d/sysctl" key want
  mkdir -p "$tun"
  touch "$m"
  unshare --mount="$m" --propagation slave true
  local binds=""
  for p in "${NODE_PATHS[@]}"; do
    binds+="mount --bind '$d/fs$(echo "$p" | tr / _)' '$p'; "
  done
  for key in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
    kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
    want="${key#*=}"
    key="${key%=*}"
    if [ "$(cat "/proc/sys/$key")" != "$want" ]; then
      echo "$want" >"$tun/$(echo "$key" | tr / _)"
      binds+="mount --bind '$tun/$(echo "$key" | tr / _)' '/proc/sys/$key'; "
    fi
  done
  nsenter --mount="$m" -- sh -ec "$binds"
}

# ---- control plane -----------------------------------------------------------------------
start_control_plane() {
  local s="$NPC_STATE" pki="$NPC_STATE/pki"
  start etcd "$NPC_FABRIC" "" etcd --name=netpol-cluster --data-dir="$s/etcd" \
    --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
    --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
    --initial-cluster=netpol-cluster=http://127.0.0.1:2380 --quota-backend-bytes=2147483648
  wait_for "etcd" 60 ip netns exec "$NPC_FABRIC" "$NPC_BIN/etcdctl" --endpoints=http://127.0.0.1:2379 endpoint health
  log "etcd ready"

  start kube-apiserver "$NPC_FABRIC" "" kube-apiserver \
    --etcd-servers=http://127.0.0.1:2379 --bind-address=0.0.0.0 --secure-port=6443 \
    --advertise-address="$NPC_FABRIC_IP" --service-cluster-ip-range="$NPC_SERVICE_CIDR" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction --allow-privileged=true \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP --endpoint-reconciler-type=lease \
    --profiling=false \
    --audit-policy-file="$NPC_ROOT/cluster/manifests/audit-policy.yaml" \
    --audit-log-path="$s/logs/audit.log" --audit-log-format=json --audit-log-maxsize=200
  # The root namespace reaches the API server through a Unix socket only root can open.
  rm -f "$NPC_RUN/apiserver.sock"
  start relay-fabric "$NPC_FABRIC" "" socat \
    "UNIX-LISTEN:$NPC_RUN/apiserver.sock,fork,mode=0600" "TCP:127.0.0.1:6443"
  start relay-root "" "" socat "TCP-LISTEN:$NPC_API_PORT,bind=127.0.0.1,reuseaddr,fork" \
    "UNIX-CONNECT:$NPC_RUN/apiserver.sock"
  wait_for "kube-apiserver" 120 kc get --raw /readyz
  log "kube-apiserver ready (https://127.0.0.1:$NPC_API_PORT)"

  start kube-controller-manager "$NPC_FABRIC" "" kube-controller-manager \
    --kubeconfig="$s/controller-manager.kubeconfig" --authentication-kubeconfig="$s/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$s/controller-manager.kubeconfig" --bind-address=127.0.0.1 \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --use-service-account-credentials=true --leader-elect=false \
    --service-cluster-ip-range="$NPC_SERVICE_CIDR" --cluster-cidr="$NPC_CLUSTER_CIDR"
  start kube-scheduler "$NPC_FABRIC" "" kube-scheduler --kubeconfig="$s/scheduler.kubeconfig" \
    --authentication-kubeconfig="$s/scheduler.kubeconfig" --authorization-kubeconfig="$s/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false
  wait_for "the default service account" 60 kc -n default get serviceaccount default
  log "controller-manager and scheduler running"
}

# ---- nodes -------------------------------------------------------------------------------
containerd_config() {
  local i="$1" d
  d="$(node_dir "$i")"
  cat <<TOML
version = 3
root = "$d/containerd"
state = "$NPC_RUN/n$i/containerd"
[grpc]
  address = "$NPC_RUN/n$i/containerd.sock"
[ttrpc]
  address = "$NPC_RUN/n$i/containerd.sock.ttrpc"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "registry.k8s.io/pause:3.10.1"
[plugins.'io.containerd.cri.v1.runtime']
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/opt/cni/bin"]
    conf_dir = "/etc/cni/net.d"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      SystemdCgroup = false
      BinaryName = "$(runc_binary)"
TOML
}

# runc itself, or, where root cannot lower an oom_score_adj (no CAP_SYS_RESOURCE), the
# wrapper that raises the kubelet's negative scores to 0 (cluster/node/runc-oom-clamp).
runc_binary() {
  if (echo -1 >/proc/self/oom_score_adj) 2>/dev/null; then
    echo /usr/sbin/runc
  else
    echo "$NPC_ROOT/cluster/node/runc-oom-clamp"
  fi
}

kubelet_config() {
  local i="$1"
  cat <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /$NPC_CGROUP/n$i
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$NPC_RUN/n$i/containerd.sock
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $NPC_STATE/pki/ca.crt}
authorization: {mode: Webhook}
clusterDNS: [$NPC_DNS_IP]
clusterDomain: cluster.local
resolvConf: $NPC_STATE/resolv.conf
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
protectKernelDefaults: false
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
YAML
}

start_node() {
  local i="$1" n d m
  n="$(node_name "$i")"
  d="$(node_dir "$i")"
  m="$(node_mntns "$i")"
  mkdir -p "$NPC_RUN/n$i"
  containerd_config "$i" >"$d/containerd.toml"
  kubelet_config "$i" >"$d/kubelet.yaml"
  cgroup_create "$NPC_CGROUP/n$i"
  start "containerd-n$i" "$n" "$m" containerd --config "$d/containerd.toml"
  wait_for "containerd on $n" 60 test -S "$NPC_RUN/n$i/containerd.sock"
  local img
  for img in "$NPC_ROOT"/build/cluster/images/*.tar; do
    "$NPC_BIN/ctr" -a "$NPC_RUN/n$i/containerd.sock" -n k8s.io images import --all-platforms "$img" >/dev/null
  done
  start "kubelet-n$i" "$n" "$m" kubelet --config="$d/kubelet.yaml" \
    --kubeconfig="$NPC_STATE/kubelet-n$i.kubeconfig" --hostname-override="$n" --node-ip="$(node_ip "$i")"
  wait_for "node $n to register" 120 kc get node "$n"
  # Each node's pod range is fixed by its index, so the fabric's routes are static.
  kc patch node "$n" --type=merge \
    -p "{\"spec\":{\"podCIDR\":\"$(node_pod_cidr "$i")\",\"podCIDRs\":[\"$(node_pod_cidr "$i")\"]}}" >/dev/null
  cat >"$d/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $NPC_STATE/kube-proxy.kubeconfig}
mode: $(cat "$NPC_STATE/proxy-mode")
hostnameOverride: $n
clusterCIDR: $NPC_CLUSTER_CIDR
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
YAML
  start "kube-proxy-n$i" "$n" "$m" kube-proxy --config="$d/kube-proxy.yaml"
  if [ "$(cat "$NPC_STATE/cni")" = bridge ]; then
    cat >"$d/fs_etc_cni_net.d/10-bridge.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "bridge", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$(node_pod_cidr "$i")"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}}]}
JSON
  fi
  log "node $n: containerd, kubelet, kube-proxy ($(cat "$NPC_STATE/proxy-mode")) running"
}

# ---- add-ons -----------------------------------------------------------------------------
start_coredns() {
  local image
  image="registry.k8s.io/coredns/coredns:$(awk '/github.com\/coredns\/coredns v/ {print $2}' \
    "$NPC_ROOT/cluster/modules/coredns/go.mod")"
  sed -e "s/@DNS_IP@/$NPC_DNS_IP/" -e "s|@IMAGE@|$image|" "$NPC_ROOT/cluster/manifests/coredns.yaml" \
    | kc apply -f - >/dev/null
  log "CoreDNS deployed (kube-system/kube-dns at $NPC_DNS_IP); it starts once pods can be wired"
}

cmd_up() {
  check_root
  local proxy_mode=nftables cni=none
  while [ $# -gt 0 ]; do
    case "$1" in
      --proxy-mode) proxy_mode="$2"; shift 2 ;;
      --cni) cni="$2"; shift 2 ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown flag $1 (see cluster.sh --help)" ;;
    esac
  done
  case "$proxy_mode" in nftables|iptables) ;; *) die "--proxy-mode must be nftables or iptables" ;; esac
  case "$cni" in none|bridge) ;; *) die "--cni must be none or bridge" ;; esac
  if ip netns list | grep -w "$NPC_FABRIC" >/dev/null; then
    die "a cluster is already up (cluster.sh down first)"
  fi
  local t0=$SECONDS
  trap 'echo "cluster: up failed; the components'"'"' logs are in $NPC_STATE/logs; cluster.sh down removes what was made" >&2' ERR
  local b
  for b in etcd etcdctl kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy \
    kubectl containerd containerd-shim-runc-v2 ctr; do
    [ -x "$NPC_BIN/$b" ] || die "$NPC_BIN/$b is missing: make cluster-build (or make cluster-up) builds it"
  done
  for b in pause agnhost coredns netpol; do
    [ -f "$NPC_ROOT/build/cluster/images/$b.tar" ] \
      || die "image build/cluster/images/$b.tar is missing: make cluster-build (or make cluster-up) builds it"
  done
  mkdir -p "$NPC_STATE" "$NPC_RUN/pids" "$NPC_RUN/ns"
  chmod 0700 "$NPC_STATE" "$NPC_RUN"
  echo "$proxy_mode" >"$NPC_STATE/proxy-mode"
  echo "$cni" >"$NPC_STATE/cni"
  : >"$NPC_STATE/resolv.conf"
  mountpoint -q "$NPC_RUN/ns" || mount --bind "$NPC_RUN/ns" "$NPC_RUN/ns"
  mount --make-private "$NPC_RUN/ns"
  if [ "$(runc_binary)" != /usr/sbin/runc ]; then
    log "this machine's root cannot lower an oom_score_adj (no CAP_SYS_RESOURCE): containers'"
    log "negative scores (critical and Guaranteed pods) are raised to 0 (cluster/node/runc-oom-clamp)"
  fi
  step "network: $NPC_FABRIC and $NPC_NODES nodes"
  make_network
  step "certificates"
  make_pki
  step "control plane"
  start_control_plane
  step "nodes"
  local i
  for i in $(seq 1 "$NPC_NODES"); do
    make_node_fs "$i"
    start_node "$i"
  done
  step "add-ons"
  start_coredns
  step "cluster up in $((SECONDS - t0)) s"
  echo "  export KUBECONFIG=$KUBECONFIG_ADMIN"
  [ "$cni" = none ] && echo "  nodes have no CNI yet: install netpol (kubectl apply -f deploy/netpol.yaml)"
  return 0
}

# ---- down --------------------------------------------------------------------------------
kill_cluster_processes() {
  local pids round
  for round in 1 2 3 4 5 6 7 8 9 10; do
    pids="$(cluster_pids)"
    [ -z "$pids" ] && return 0
    if [ "$round" -le 3 ]; then kill -TERM $pids 2>/dev/null || true; else kill -KILL $pids 2>/dev/null || true; fi
    sleep 1
  done
  pids="$(cluster_pids)"
  [ -z "$pids" ] || echo "cluster: processes still alive in the cluster's cgroups: $pids" >&2
}

remove_cgroups() {
  local h
  for h in $(cgroup_hierarchies); do
    [ -d "$h/$NPC_CGROUP" ] || continue
    find "$h/$NPC_CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

cmd_down() {
  check_root
  step "stopping every process of the cluster"
  kill_cluster_processes
  local f n
  for f in "$NPC_RUN"/ns/*.mnt; do
    [ -e "$f" ] && { umount "$f" 2>/dev/null || true; rm -f "$f"; }
  done
  mountpoint -q "$NPC_RUN/ns" 2>/dev/null && umount "$NPC_RUN/ns"
  step "removing the network namespaces"
  for n in $(ip netns list | awk '{print $1}' | grep -E '^npc-(fabric|n[0-9]+)$' || true); do
    ip netns delete "$n"
  done
  remove_cgroups
  # Nothing of the cluster may still be mounted below its state before it is deleted.
  if findmnt -rn -o TARGET | grep "^$NPC_STATE" >/dev/null; then
    findmnt -rn -o TARGET | grep "^$NPC_STATE" | sort -r | xargs -r -n1 umount -l
  fi
  if [ -f "$NPC_STATE/created-dirs" ]; then
    sort -ru "$NPC_STATE/created-dirs" | while read -r d; do rmdir "$d" 2>/dev/null || true; done
  fi
  rm -rf --one-file-system "$NPC_STATE" "$NPC_RUN"
  step "cluster removed"
}

cmd_status() {
  if ! ip netns list 2>/dev/null | grep -w "$NPC_FABRIC" >/dev/null; then
    echo "cluster: down"
    return 1
  fi
  printf '%-26s %-8s %s\n' COMPONENT PID STATE
  local f name pid state
  for f in "$NPC_RUN"/pids/*; do
    name="$(basename "$f")"
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null; then state=running; else state=exited; fi
    printf '%-26s %-8s %s\n' "$name" "$pid" "$state"
  done
  echo
  kc get nodes -o wide 2>&1 || true
}

# Sourced (by tests of its parts), it only defines the functions.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0
case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down ;;
  status) cmd_status ;;
  kubeconfig) echo "$KUBECONFIG_ADMIN" ;;
  restart) check_root; shift; for c in "$@"; do restart "$c"; log "restarted $c"; done ;;
  -h|--help|help|"") usage ;;
  *) echo "cluster: unknown command '$1'" >&2; usage >&2; exit 2 ;;
esac
