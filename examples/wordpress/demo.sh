#!/usr/bin/env bash
# The guide's walkthrough, analysed: the connectivity matrix of the WordPress
# application before any policy, after default-deny, and after allowing only
# WordPress -> MariaDB on TCP 3306.
set -euo pipefail
netpol=${1:-netpol}
probe=${2:-$(dirname "$netpol")/../lab/netpol-probe}
dir=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$dir/../.." && pwd)

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "The application: WordPress, MariaDB and a client pod (examples/wordpress/app.yaml)"
run "$netpol" validate -f "$dir"
echo "No policy selects any pod yet, so every pod may reach every other pod:"
run "$netpol" matrix -f "$dir/app.yaml"

step "Step 2: kubectl create -f policy-deny-all.yaml"
echo "default-deny selects every pod in the namespace and allows no ingress: nothing reaches anything,"
echo "so WordPress loses its database."
run "$netpol" matrix -f "$dir/app.yaml" -f "$dir/policy-deny-all.yaml"
run "$netpol" check -f "$dir/app.yaml" -f "$dir/policy-deny-all.yaml" \
  --from np-test-wordpress-0 --to np-test-mariadb-0 --port 3306 || true

step "Step 3: kubectl create -f policy-wordpress-mariadb.yaml"
echo "db-frontend-allow lets pods labelled app=np-test-wordpress into MariaDB on TCP 3306, and only them:"
echo "WordPress recovers; the client still cannot reach MariaDB."
run "$netpol" matrix -f "$dir"
run "$netpol" check -f "$dir" --from np-test-wordpress-0 --to np-test-mariadb-0 --port 3306
run "$netpol" check -f "$dir" --from client --to np-test-mariadb-0 --port 3306 || true

step "What each policy does"
run "$netpol" explain -f "$dir"
run "$netpol" lint -f "$dir"

# ---- the same story on real packets (root) -----------------------------------------
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
  echo
  echo "(run as root to see the same three steps enforced on real packets)"
  exit 0
fi

prefix="npdemo$$"
node="$prefix-node"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  "$root/tests/e2e/lab.sh" down "$prefix"
}
trap cleanup EXIT

step "On real packets: the three pods as network namespaces behind a node namespace"
"$root/tests/e2e/lab.sh" up "$prefix" 198.18.0.10 198.18.0.11 198.18.0.12
for i in 1 2 3; do
  ip netns exec "$prefix-p$i" timeout 120 "$probe" serve 110 80/TCP 3306/TCP >/dev/null &
  pids+=($!)
done
sleep 0.3

try() {  # try FROM_NETNS LABEL ADDRESS PORT
  if ip netns exec "$1" "$probe" connect "$3" "$4/TCP" 500; then
    printf '  %-32s connected\n' "$2"
  else
    printf '  %-32s blocked (no answer within 0.5 s)\n' "$2"
  fi
}
probes() {
  try "$prefix-p2" "wordpress -> mariadb:3306" 198.18.0.10 3306
  try "$prefix-p3" "client    -> mariadb:3306" 198.18.0.10 3306
  try "$prefix-p3" "client    -> wordpress:80" 198.18.0.11 80
}

echo "No policy yet:"
run "$netpol" enforce -f "$root/examples/wordpress-lab/pods.yaml" --netns "$node"
probes
step "kubectl create -f policy-deny-all.yaml, enforced"
run "$netpol" enforce -f "$root/examples/wordpress-lab/pods.yaml" -f "$dir/policy-deny-all.yaml" --netns "$node"
probes
step "kubectl create -f policy-wordpress-mariadb.yaml, enforced"
run "$netpol" enforce -f "$root/examples/wordpress-lab/pods.yaml" -f "$dir/policy-deny-all.yaml" \
  -f "$dir/policy-wordpress-mariadb.yaml" --netns "$node"
probes
echo
echo "The allow rule as the node has it (netpol enforce --show), commented with its policy:"
"$netpol" enforce --show --netns "$node" | grep -A4 "set in_exact_v4 {"
