#!/usr/bin/env bash
# The guide, lived in `netpol lab` (root): WordPress and MariaDB from Debian's
# packages as pods on two nodes, the guide's kubectl commands, real traffic.
#   examples/wordpress-lab/demo.sh BIN_DIR     (BIN_DIR holds netpol and its programs)
# Everything it creates is removed at the end, also on failure or Ctrl-C.
set -euo pipefail
bin=$(cd "${1:?bin dir}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
lab_dir=${LAB_DIR:-/tmp/netpol-demo-lab}
name=${LAB_NAME:-npdemo}
netpol="$bin/netpol"
lab_flags=(--dir "$lab_dir" --name "$name")

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
run() { printf '$ %s\n' "$*"; "$@"; }

command -v kubectl >/dev/null || { echo "kubectl is needed for the walkthrough" >&2; exit 1; }
cleanup() { "$netpol" lab down "${lab_flags[@]}" >/dev/null 2>&1 || true; }
trap cleanup EXIT
export KUBECONFIG="$lab_dir/kubeconfig"
# kubectl keeps a discovery cache under $HOME: the lab's own.
export HOME="$lab_dir/home"

step "A cluster on this machine: 2 nodes, each a network namespace with netpold and a kubelet"
run "$netpol" lab up "${lab_flags[@]}" --nodes 2
mkdir -p "$HOME"
sed -e "s|@WORKLOADS@|$here|g" -e "s|@DATA@|$lab_dir/data|g" "$here/app.yaml.in" >"$lab_dir/app.yaml"

pod_json() { kubectl get pods -l "app=$1" -o json; }
pod_ip() { pod_json "$1" | sed -n 's/.*"podIP": "\([0-9.]*\)".*/\1/p' | head -1; }
pod_node() { pod_json "$1" | sed -n 's/.*"nodeName": "\([^"]*\)".*/\1/p' | head -1; }
ready_count() { kubectl get pods --no-headers 2>/dev/null | awk '{split($2, r, "/"); if (r[1] == r[2]) n++} END {print n + 0}'; }
all_ready() { test "$(ready_count)" = 3; }
not_all_ready() { test "$(ready_count)" -lt 3; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND... (the command runs again on each try)
  local limit=$1 what=$2
  shift 2
  for _ in $(seq 1 $((limit * 2))); do "$@" && return 0; sleep 0.5; done
  echo "timed out after ${limit}s waiting for: $what" >&2
  return 1
}
# What a browser would see, fetched from WordPress's node (a node may always
# reach its pods: the kubelet's probes do the same).
fetch() {
  local ip node code
  ip=$(pod_ip np-test-wordpress)
  node=$(pod_node np-test-wordpress)
  code=$(ip netns exec "$name-$node" curl -s -m 10 -o "$lab_dir/page.html" -w '%{http_code}' "http://$ip/" || true)
  printf '  WordPress answers: HTTP %s; ' "$code"
  if grep -q 'Error establishing a database connection' "$lab_dir/page.html" 2>/dev/null; then
    echo '"Error establishing a database connection"'
  else
    echo "title: $(sed -n 's/.*<title>\(.*\)<\/title>.*/\1/p' "$lab_dir/page.html" | head -1)"
  fi
}
serves() { fetch | grep -q 'HTTP 200'; }
db_error() { fetch | grep -q 'Error establishing'; }
client_to_db() {
  local ns="$name-default.client"
  if ip netns exec "$ns" mariadb --no-defaults --connect-timeout=2 -h np-test-mariadb -u wordpress \
      -pnetpol-lab-db -e 'SELECT 1' wordpress >/dev/null 2>&1; then
    echo "  client -> MariaDB (mariadb -h np-test-mariadb): connected"
  else
    echo "  client -> MariaDB (mariadb -h np-test-mariadb): cannot connect"
  fi
}

step "Step 1: deploy WordPress + MariaDB (examples/wordpress-lab/app.yaml.in)"
run kubectl create -f "$lab_dir/app.yaml"
wait_for 120 "every pod ready" all_ready
run kubectl get pods -o wide
wp_ip=$(pod_ip np-test-wordpress)
echo "Installing WordPress (the installer's one POST):"
ip netns exec "$name-$(pod_node np-test-wordpress)" curl -s -m 60 -o /dev/null -w '  install.php -> HTTP %{http_code}\n' \
  --data-urlencode "weblog_title=netpol lab" --data-urlencode user_name=admin \
  --data-urlencode admin_password=netpol-lab-admin --data-urlencode admin_password2=netpol-lab-admin \
  --data-urlencode pw_weak=1 --data-urlencode admin_email=admin@example.invalid --data-urlencode blog_public=0 \
  "http://$wp_ip/wp-admin/install.php?step=2"
fetch
client_to_db
run "$netpol" lab probe "${lab_flags[@]}" || true

step "Step 2: kubectl create -f policy-deny-all.yaml"
run kubectl create -f "$root/examples/wordpress/policy-deny-all.yaml"
wait_for 30 "WordPress to lose its database" db_error
fetch
echo "Its readiness probe fails, and its liveness probe restarts it:"
wait_for 60 "WordPress not ready" not_all_ready
run kubectl get pods
run "$netpol" lab probe "${lab_flags[@]}" || true

step "Step 3: kubectl create -f policy-wordpress-mariadb.yaml"
run kubectl create -f "$root/examples/wordpress/policy-wordpress-mariadb.yaml"
wait_for 60 "WordPress to serve again" serves
fetch
client_to_db
wait_for 120 "every pod ready" all_ready
run kubectl get pods
run "$netpol" lab probe "${lab_flags[@]}" || true

step "Tearing the lab down"
trap - EXIT
run "$netpol" lab down "${lab_flags[@]}"
