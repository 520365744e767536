#!/usr/bin/env bash
# Faults netpol must survive on the real cluster, with probing throughout (issue 14, 6):
# kube-apiserver restarted, etcd restarted, a node's netpold pod deleted (the DaemonSet
# recreates it), a node's containerd and kubelet restarted. A server on each node; an
# allowed client on npc-n1 and a denied one on npc-n2 open new connections to both servers
# every 200 ms, and the allowed one holds a connection to the other node's server. Passes
# when no denied connection ever succeeded, no allowed one ever failed, the held connection
# never broke, and the agent still follows policy changes afterwards (reconverged).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export KUBECONFIG="$KUBECONFIG_ADMIN"
k() { "$NPC_BIN/kubectl" "$@"; }
here="$(dirname "$0")"
ns="np-faults-$(date +%s)"
rounds=2500   # ~10 minutes at most; the clients are deleted when the check ends
settle=10     # seconds each policy change is watched for
agnhost="$("$NPC_BIN/ctr" -a "$NPC_RUN/n1/containerd.sock" -n k8s.io images ls -q | awk '/\/agnhost:/ && !n++')"
manifests="$NPC_ROOT/cluster/manifests"
out="$NPC_ROOT/build/cluster/reports/faults"
mkdir -p "$out"
cleanup() { k delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; }
trap cleanup EXIT

# netpol must run on every node: a node without it enforces nothing, and its pods' verdicts
# would be blamed on netpol (a Helm upgrade without values keeps a nodeSelector given before).
nodes="$(k get nodes -o name | wc -l)"
agents="$(k -n kube-system get ds netpol-node -o jsonpath='{.status.numberReady}')"
[ "$agents" = "$nodes" ] || die "netpol is ready on $agents of $nodes nodes; install it on every node first"
fill() { sed -e "s|@NS@|$ns|g" -e "s|@AGNHOST@|$agnhost|g" -e "s|@ROUNDS@|$rounds|g" "$@"; }
step "faults: workload in namespace $ns"
fill "$manifests/faults.yaml" | k apply -f - >/dev/null
k -n "$ns" wait --for=condition=Ready pod/server-n1 pod/server-n2 --timeout=120s >/dev/null
s1="$(k -n "$ns" get pod server-n1 -o jsonpath='{.status.podIP}')"
s2="$(k -n "$ns" get pod server-n2 -o jsonpath='{.status.podIP}')"
for c in allowed:npc-n1 denied:npc-n2; do
  fill "$manifests/faults-client.yaml" | sed -e "s|@ROLE@|${c%%:*}|g" -e "s|@NODE@|${c#*:}|g" \
    -e "s|@SERVER_N1@|$s1|g" -e "s|@SERVER_N2@|$s2|g" | k apply -f - >/dev/null
done
k -n "$ns" wait --for=condition=Ready pod/client-allowed pod/client-denied --timeout=120s >/dev/null
sleep 5
marks=()
mark() { marks+=("$(date +%s.%N) $*"); log "$*"; }

mark "start"
step "fault: kube-apiserver restarted"
"$here/cluster.sh" restart kube-apiserver >/dev/null
wait_for "kube-apiserver back" 120 k get --raw /readyz
sleep 5
step "fault: etcd restarted"
"$here/cluster.sh" restart etcd >/dev/null
wait_for "etcd and kube-apiserver back" 120 k get --raw '/readyz?verbose'
sleep 5
step "fault: netpold on npc-n1 deleted (the DaemonSet recreates it)"
k -n kube-system delete pod -l app=netpol-node --field-selector spec.nodeName=npc-n1 --wait=true >/dev/null
k -n kube-system rollout status ds/netpol-node --timeout=180s >/dev/null
sleep 5
step "fault: containerd and kubelet of npc-n2 restarted"
"$here/cluster.sh" restart containerd-n2 >/dev/null
"$here/cluster.sh" restart kubelet-n2 >/dev/null
node_ready() { [ "$(k get node npc-n2 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
sleep 5
wait_for "npc-n2 Ready again" 120 node_ready
sleep 5
mark "faults over"

step "reconverged: the agents still follow policy (the denied client allowed, then denied again)"
k -n "$ns" patch networkpolicy servers-allow-client --type=json \
  -p '[{"op":"add","path":"/spec/ingress/0/from/-","value":{"podSelector":{"matchLabels":{"role":"denied"}}}}]' >/dev/null
sleep "$settle"
mark "denied client allowed"
k -n "$ns" patch networkpolicy servers-allow-client --type=json -p '[{"op":"remove","path":"/spec/ingress/0/from/1"}]' >/dev/null
sleep "$settle"
mark "denied client denied again"
sleep 3
k -n "$ns" logs client-allowed >"$out/client-allowed.log"
k -n "$ns" logs client-denied >"$out/client-denied.log"
printf '%s\n' "${marks[@]}" >"$out/marks"

# Verdicts by phase. Between a policy change and its enforcement a few probes may see
# either verdict: the 2 s after each change are not judged.
start="$(echo "${marks[0]}" | cut -d' ' -f1)"
over="$(echo "${marks[1]}" | cut -d' ' -f1)"
opened="$(echo "${marks[2]}" | cut -d' ' -f1)"
closed="$(echo "${marks[3]}" | cut -d' ' -f1)"
opened_at=$(echo "$opened - $settle" | bc)
closed_at=$(echo "$closed - $settle" | bc)
rc=0
judge() {  # judge LOG FROM TO EXPECT WHAT
  awk -v from="$2" -v to="$3" -v want="$4" -v what="$5" '
    $1 >= from && $1 < to && ($3 == "ok" || $3 == "fail") { n++; if ($3 != want) bad++ }
    END { printf "  %-58s %5d probes, %d wrong\n", what, n, bad; exit (bad > 0 || n == 0) }' "$1"
}
judge "$out/client-allowed.log" "$start" "$over" ok "allowed client, new connections, during the faults" || rc=1
judge "$out/client-denied.log" "$start" "$over" fail "denied client, new connections, during the faults" || rc=1
judge "$out/client-denied.log" "$(echo "$opened_at + 2" | bc)" "$opened" ok "denied client once the policy allows it" || rc=1
judge "$out/client-denied.log" "$(echo "$closed_at + 2" | bc)" "$closed" fail "denied client once the policy denies it again" || rc=1
held_ok="$(grep -c 'held ok' "$out/client-allowed.log" || true)"
held_broken="$(grep -c 'held broken' "$out/client-allowed.log" || true)"
printf '  %-58s %5d answers, %d broken\n' "the held connection (npc-n1 -> npc-n2)" "$held_ok" "$held_broken"
[ "$held_broken" -eq 0 ] && [ "$held_ok" -gt 0 ] || rc=1
[ $rc -eq 0 ] && step "faults: survived, nothing lost" || step "faults: FAILED (logs in $out)"
exit $rc
