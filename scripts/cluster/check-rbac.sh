#!/usr/bin/env bash
# Shows that netpol's ClusterRole is the least netpold needs: from the API server's audit
# log (cluster/manifests/audit-policy.yaml records every request of netpol's service
# account), every (resource, verb) the role grants was used, and nothing was refused.
# Run after netpol has been installed and has reacted to pods and policies.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export KUBECONFIG="$KUBECONFIG_ADMIN"
audit="$NPC_STATE/logs/audit.log"
[ -s "$audit" ] || die "no audit log at $audit"
sa="system:serviceaccount:kube-system:netpol"

# What the role grants: "group/resource verb" lines.
granted="$("$NPC_BIN/kubectl" get clusterrole netpol -o json | jq -r \
  '.rules[] | .apiGroups[] as $g | .resources[] as $r | .verbs[] as $v | "\($g)/\($r) \($v)"' | sort -u)"
# What was asked for, with the answers.
used="$(jq -r --arg sa "$sa" 'select(.user.username == $sa and .stage == "ResponseComplete")
  | "\(.objectRef.apiGroup // "")/\(.objectRef.resource) \(.verb) \(.responseStatus.code)"' "$audit" | sort | uniq -c)"
echo "requests of $sa (count, group/resource, verb, HTTP code):"
echo "$used" | sed 's/^/  /'

rc=0
refused="$(echo "$used" | awk '$4 == 403')"
if [ -n "$refused" ]; then
  echo "check-rbac: refused requests (the role lacks them):"
  echo "$refused"
  rc=1
fi
while read -r grant; do
  [ -z "$grant" ] && continue
  if ! echo "$used" | awk '{print $2 " " $3}' | grep -xF "$grant" >/dev/null; then
    echo "check-rbac: granted but never used: $grant (the role is more than netpol needs)"
    rc=1
  fi
done <<<"$granted"
[ $rc -eq 0 ] && echo "check-rbac: every grant used, nothing refused: $(echo "$granted" | tr '\n' ';')"
exit $rc
