# Shared by the real-cluster scripts (sourced, not run). The cluster's layout:
#
#   root namespace   kubectl and e2e.test reach the API server at https://127.0.0.1:$NPC_API_PORT
#                    through a socat relay (a Unix socket in $NPC_RUN); nothing else.
#   npc-fabric       the control plane (etcd, kube-apiserver, kube-controller-manager,
#                    kube-scheduler) and the bridge every node is plugged into
#                    (198.19.255.254/24); routes each node's pod range to that node.
#   npc-n1, npc-n2   a node each: its own network namespace and mount namespace (its own
#                    /etc/cni/net.d, /opt/cni/bin, /var/lib/kubelet, /run/netpol, ...), its own
#                    containerd + runc, kubelet (cgroupfs, cgroup root /netpol-cluster/nI) and
#                    kube-proxy. Pod traffic between nodes crosses the fabric.
#
# Every process the scripts start, and every container, lives under the cgroup
# /netpol-cluster, so `cluster down` finds exactly what the cluster started, also after a crash.

NPC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NPC_BIN="${NETPOL_CLUSTER_BIN:-$NPC_ROOT/build/cluster/bin}"
NPC_STATE="${NETPOL_CLUSTER_STATE:-/var/lib/netpol-cluster}"
NPC_RUN="/run/netpol-cluster"
NPC_CGROUP="netpol-cluster"
NPC_API_PORT="${NETPOL_CLUSTER_API_PORT:-6443}"
NPC_NODES="${NETPOL_CLUSTER_NODES:-2}"
NPC_FABRIC="npc-fabric"

# Addresses: only 198.18.0.0/15.
NPC_FABRIC_IP="198.19.255.254"        # the control plane's address on the fabric
NPC_SERVICE_CIDR="198.19.0.0/20"      # ClusterIPs
NPC_KUBERNETES_SVC_IP="198.19.0.1"
NPC_DNS_IP="198.19.0.10"
NPC_CLUSTER_CIDR="198.18.0.0/16"      # pods; node i gets 198.18.i.0/24
node_name() { echo "npc-n$1"; }
node_ip() { echo "198.19.255.$1"; }
node_pod_cidr() { echo "198.18.$1.0/24"; }
node_dir() { echo "$NPC_STATE/nodes/n$1"; }
node_mntns() { echo "$NPC_RUN/ns/n$1.mnt"; }

KUBECONFIG_ADMIN="$NPC_STATE/admin.kubeconfig"

log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*"; }
if [ -t 1 ]; then NPC_BOLD=$'\033[1m' NPC_PLAIN=$'\033[0m'; else NPC_BOLD='' NPC_PLAIN=''; fi
step() { printf '%s  %s%s%s\n' "$(date +%H:%M:%S)" "$NPC_BOLD" "$*" "$NPC_PLAIN"; }
die() { printf 'cluster: %s\n' "$*" >&2; exit 1; }

kc() { "$NPC_BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# The v1 hierarchies this kernel mounts (cgroup v1 with a v2 'unified' mount beside).
cgroup_hierarchies() {
  local d
  for d in /sys/fs/cgroup/*/; do
    d="${d%/}"
    [ -f "$d/cgroup.procs" ] || continue
    [ "$(basename "$d")" = unified ] && continue
    echo "$d"
  done
}

# cgroup_create PATH: PATH (relative, e.g. netpol-cluster/n1) in every hierarchy; cpuset
# needs its cpus and mems copied from the parent before a task can join.
cgroup_create() {
  local rel="$1" h parent d
  for h in $(cgroup_hierarchies); do
    parent="$h"
    local part
    IFS=/ read -ra parts <<<"$rel"
    for part in "${parts[@]}"; do
      d="$parent/$part"
      if [ ! -d "$d" ]; then
        mkdir "$d"
        if [ -f "$d/cpuset.cpus" ]; then
          cat "$parent/cpuset.cpus" >"$d/cpuset.cpus"
          cat "$parent/cpuset.mems" >"$d/cpuset.mems"
        fi
      fi
      parent="$d"
    done
  done
}

# Every PID in the cluster's cgroup subtree (the pids hierarchy sees every task).
cluster_pids() {
  local base=/sys/fs/cgroup/pids/$NPC_CGROUP
  [ -d "$base" ] || return 0
  find "$base" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un
}

# start NAME NETNS MNTNS CMD...: runs CMD detached in the cgroup netpol-cluster/sys/NAME,
# in the given network namespace ("" for the root one) and mount namespace file ("" for
# the root one), logging to $NPC_STATE/logs/NAME.log.
start() {
  local name="$1" netns="$2" mntns="$3"; shift 3
  local cg="$NPC_CGROUP/sys/$name"
  cgroup_create "$cg"
  local enter=()
  [ -n "$netns" ] && enter+=(--net="/run/netns/$netns")
  [ -n "$mntns" ] && enter+=(--mount="$mntns")
  mkdir -p "$NPC_STATE/logs"
  # The child joins the cgroups before exec'ing, so everything it starts is found later.
  setsid bash -c '
    for h in '"$(cgroup_hierarchies | tr '\n' ' ')"'; do echo $$ > "$h/'"$cg"'/cgroup.procs"; done
    exec "$@"' _ nsenter "${enter[@]}" -- env PATH="$NPC_BIN:/usr/sbin:/usr/bin:/sbin:/bin" "$@" \
    >>"$NPC_STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$NPC_RUN/pids/$name"
  # How it was started, so `cluster.sh restart NAME` starts it again the same way.
  mkdir -p "$NPC_RUN/cmd"
  printf '%s\0' "$netns" "$mntns" "$@" >"$NPC_RUN/cmd/$name"
}

# stop NAME: SIGTERM to the component's own process (not what it started: a containerd's
# shims and containers keep running, as when a node's containerd restarts), then SIGKILL.
stop() {
  local name="$1" pid
  pid="$(cat "$NPC_RUN/pids/$name" 2>/dev/null)" || die "no component '$name'"
  kill -TERM "$pid" 2>/dev/null || return 0
  local i
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# restart NAME: stop, then start with the arguments it was first started with.
restart() {
  local name="$1"
  [ -f "$NPC_RUN/cmd/$name" ] || die "no component '$name' (see cluster.sh status)"
  local args=()
  mapfile -d '' args <"$NPC_RUN/cmd/$name"
  stop "$name"
  start "$name" "${args[@]}"
}

# wait_for DESCRIPTION SECONDS CMD...: polls CMD every half second.
wait_for() {
  local what="$1" limit="$2"; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "cluster: timed out after ${limit}s waiting for $what" >&2
      return 1
    fi
    sleep 0.5
  done
}
