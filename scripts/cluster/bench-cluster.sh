#!/usr/bin/env bash
# Benchmarks on the real cluster (docs/BENCHMARKS.md records their output):
#
#   bench-cluster.sh policy [N]   NetworkPolicy created -> enforced on every node, and deleted
#                                 -> enforced, N times (default 100): a server and a client
#                                 on each node; netload (build/release/bench) in each client's
#                                 network namespace opens a connection to each server every
#                                 2 ms; the time is the first passing (or failing) one's start
#                                 minus the moment the create (delete) request was sent.
#   bench-cluster.sh pods LABEL [N]
#                                 pod created -> Ready, N pods (default 20) one after another
#                                 on each node, as LABEL (e.g. bridge-only, netpol).
#   bench-cluster.sh pods-ab [N]  the same, interleaved, on a chained cluster without netpol:
#                                 N pods alternately on npc-n1 and npc-n2 (the nodes compared
#                                 bare), then netpol installed on npc-n1 only (helm,
#                                 nodeSelector) and N more alternately: npc-n1 with netpol
#                                 against npc-n2 with the bridge alone, in the same minutes.
#                                 Leaves netpol installed on npc-n1 only (a later `helm
#                                 upgrade` keeps that unless given --reset-values).
# Prints p50, p90, p99 and max in ms, and writes the samples to build/cluster/reports/bench/.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export KUBECONFIG="$KUBECONFIG_ADMIN"
k() { "$NPC_BIN/kubectl" "$@"; }
netload="$NPC_ROOT/build/release/bench/netload"
out="$NPC_ROOT/build/cluster/reports/bench"
mkdir -p "$out"
pki="$NPC_STATE/pki"
api="https://127.0.0.1:$NPC_API_PORT"
agnhost="$("$NPC_BIN/ctr" -a "$NPC_RUN/n1/containerd.sock" -n k8s.io images ls -q | awk '/\/agnhost:/ && !n++')"
now() { date +%s.%N; }
# curl as the admin: a request costs milliseconds, not a kubectl start.
api_call() {
  curl -sS --fail -o /dev/null --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$@"
}
stats() {  # stats FILE WHAT: percentiles of the ms samples in FILE
  sort -n "$1" | awk -v what="$2" '{ v[NR] = $1 } END {
    if (NR == 0) { print what ": no samples"; exit 1 }
    i50 = int(NR * 0.50 + 0.5); i90 = int(NR * 0.90 + 0.5); i99 = int(NR * 0.99 + 0.5)
    if (i50 < 1) i50 = 1; if (i90 < 1) i90 = 1; if (i99 < 1) i99 = 1
    printf "%-52s n=%d  p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n", what, NR, v[i50], v[i90], v[i99], v[NR]
  }'
}
# The network namespace of a pod's container, as the host sees it.
pod_netns() {
  local ns="$1" pod="$2" node id pid
  node="$(k -n "$ns" get pod "$pod" -o jsonpath='{.spec.nodeName}')"
  id="$(k -n "$ns" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].containerID}')"
  id="${id#containerd://}"
  pid="$("$NPC_BIN/ctr" -a "$NPC_RUN/n${node#npc-n}/containerd.sock" -n k8s.io tasks ls | awk -v id="$id" '$1 == id {print $2}')"
  [ -n "$pid" ] || die "no task for $ns/$pod"
  echo "/proc/$pid/ns/net"
}

bench_policy() {
  local n="${1:-100}" ns="np-bench-$(date +%s)"
  trap 'k delete namespace '"$ns"' --wait=false >/dev/null 2>&1 || true' RETURN
  step "policy -> enforced: $n policies, namespace $ns"
  k create namespace "$ns" >/dev/null
  local i
  for i in 1 2; do
    k -n "$ns" run "server-n$i" --image="$agnhost" --image-pull-policy=Never --labels=role=server \
      --overrides="{\"spec\":{\"nodeName\":\"npc-n$i\"}}" -- netexec --http-port=8080 >/dev/null
    k -n "$ns" run "client-n$i" --image="$agnhost" --image-pull-policy=Never --labels=role=client \
      --overrides="{\"spec\":{\"nodeName\":\"npc-n$i\"}}" --command -- /agnhost pause >/dev/null
  done
  k -n "$ns" wait --for=condition=Ready pod --all --timeout=120s >/dev/null
  k -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny}
spec: {podSelector: {matchLabels: {role: server}}}
YAML
  local servers=() clients=()
  for i in 1 2; do
    servers+=("$(k -n "$ns" get pod "server-n$i" -o jsonpath='{.status.podIP}')")
    clients+=("$(pod_netns "$ns" "client-n$i")")
  done
  local created="$out/policy-created.ms" deleted="$out/policy-deleted.ms"
  : >"$created"; : >"$deleted"
  local body
  for i in $(seq 1 "$n"); do
    body="{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"allow-$i\"},\"spec\":{\"podSelector\":{\"matchLabels\":{\"role\":\"server\"}},\"ingress\":[{\"from\":[{\"podSelector\":{\"matchLabels\":{\"role\":\"client\"}}}],\"ports\":[{\"protocol\":\"TCP\",\"port\":8080}]}]}}"
    measure open "$created" api_call -X POST -H 'Content-Type: application/json' -d "$body" \
      "$api/apis/networking.k8s.io/v1/namespaces/$ns/networkpolicies"
    measure closed "$deleted" api_call -X DELETE "$api/apis/networking.k8s.io/v1/namespaces/$ns/networkpolicies/allow-$i"
    [ $((i % 10)) -eq 0 ] && log "  $i/$n"
  done
  stats "$created" "NetworkPolicy created -> enforced on every node"
  stats "$deleted" "NetworkPolicy deleted -> enforced on every node"
}

# measure open|closed FILE REQUEST...: probes started, the request sent, the last pair's
# first connection in the wanted state, in ms after the request's start.
measure() {
  local want="$1" file="$2"; shift 2
  local tmp pids=() c s j=0 t0 last=0 v
  tmp="$(mktemp -d)"
  for c in "${clients[@]}"; do
    for s in "${servers[@]}"; do
      nsenter --net="$c" "$netload" until "$s" 8080 "$want" 10 >"$tmp/$j" &
      pids+=($!)
      j=$((j + 1))
    done
  done
  sleep 0.05   # the probes see the old state first
  t0="$(now)"
  "$@"
  for p in "${pids[@]}"; do wait "$p" || die "a probe never saw $want"; done
  for f in "$tmp"/*; do
    v="$(cat "$f")"
    last="$(echo "if ($v > $last) $v else $last" | bc)"
  done
  echo "($last - $t0) * 1000" | bc -l | awk '{ printf "%.2f\n", ($1 < 0 ? 0 : $1) }' >>"$file"
  rm -rf "$tmp"
}

# ready_ms NS NAME NODE: creates one pause pod on NODE, prints created -> Ready in ms.
ready_ms() {
  local ns="$1" name="$2" node="$3" t0 t1 body
  body="{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"$name\"},\"spec\":{\"nodeName\":\"$node\",\"terminationGracePeriodSeconds\":0,\"containers\":[{\"name\":\"c\",\"image\":\"$agnhost\",\"imagePullPolicy\":\"Never\",\"args\":[\"pause\"]}]}}"
  t0="$(now)"
  api_call -X POST -H 'Content-Type: application/json' -d "$body" "$api/api/v1/namespaces/$ns/pods"
  k -n "$ns" wait --for=condition=Ready "pod/$name" --timeout=120s >/dev/null
  t1="$(now)"
  echo "($t1 - $t0) * 1000" | bc -l | awk '{ printf "%.2f\n", $1 }'
}

bench_pods() {
  local label="${1:?bench-cluster.sh pods LABEL [N]}" n="${2:-20}" ns="np-bench-pods-$(date +%s)"
  trap 'k delete namespace '"$ns"' --wait=false >/dev/null 2>&1 || true' RETURN
  step "pod created -> Ready ($label): $n pods on each node"
  k create namespace "$ns" >/dev/null
  wait_for "the namespace's service account" 30 k -n "$ns" get serviceaccount default
  local file="$out/pod-ready-$label.ms" i node
  : >"$file"
  for i in $(seq 1 "$n"); do
    for node in npc-n1 npc-n2; do ready_ms "$ns" "p$i-$node" "$node" >>"$file"; done
  done
  stats "$file" "pod created -> Ready ($label)"
}

bench_pods_ab() {
  local n="${1:-20}" ns="np-bench-ab-$(date +%s)" i phase
  [ "$(cat "$NPC_STATE/cni")" = bridge ] || die "pods-ab needs a chained cluster (cluster.sh up --cni bridge)"
  ! "$NPC_BIN/helm" status netpol -n kube-system >/dev/null 2>&1 || die "pods-ab starts without netpol installed"
  trap 'k delete namespace '"$ns"' --wait=false >/dev/null 2>&1 || true' RETURN
  k create namespace "$ns" >/dev/null
  wait_for "the namespace's service account" 30 k -n "$ns" get serviceaccount default
  for phase in bare netpol-on-n1; do
    if [ "$phase" = netpol-on-n1 ]; then
      step "netpol (chained) on npc-n1 only"
      "$NPC_BIN/helm" upgrade --install netpol "$NPC_ROOT/deploy/helm/netpol" -n kube-system \
        --set-string 'nodeSelector.kubernetes\.io/hostname=npc-n1' --wait --timeout 5m >/dev/null
      k -n kube-system rollout status ds/netpol-node --timeout=300s >/dev/null
    fi
    step "pod created -> Ready, $phase: $n pods on each node, alternately"
    : >"$out/pod-ready-$phase-n1.ms"
    : >"$out/pod-ready-$phase-n2.ms"
    for i in $(seq 1 "$n"); do
      ready_ms "$ns" "$phase-$i-n1" npc-n1 >>"$out/pod-ready-$phase-n1.ms"
      ready_ms "$ns" "$phase-$i-n2" npc-n2 >>"$out/pod-ready-$phase-n2.ms"
    done
    stats "$out/pod-ready-$phase-n1.ms" "pod created -> Ready, $phase, npc-n1"
    stats "$out/pod-ready-$phase-n2.ms" "pod created -> Ready, $phase, npc-n2"
  done
  median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
  local a1 a2 b1 b2
  a1="$(median "$out/pod-ready-bare-n1.ms")"; a2="$(median "$out/pod-ready-bare-n2.ms")"
  b1="$(median "$out/pod-ready-netpol-on-n1-n1.ms")"; b2="$(median "$out/pod-ready-netpol-on-n1-n2.ms")"
  awk -v a1="$a1" -v a2="$a2" -v b1="$b1" -v b2="$b2" 'BEGIN {
    printf "median ratio npc-n1 / npc-n2: bare %.2f, netpol on npc-n1 %.2f\n", a1 / a2, b1 / b2 }'
}

case "${1:-}" in
  policy) shift; bench_policy "$@" ;;
  pods) shift; bench_pods "$@" ;;
  pods-ab) shift; bench_pods_ab "$@" ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
