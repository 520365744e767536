#!/usr/bin/env bash
# The guide's walkthrough, analysed: the connectivity matrix of the WordPress
# application before any policy, after default-deny, and after allowing only
# WordPress -> MariaDB on TCP 3306.
set -euo pipefail
netpol=${1:-netpol}
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

# ---- the same story, lived: the lab with real MariaDB and WordPress (root) ------------
if [ "$(id -u)" != 0 ]; then
  echo
  echo "(run as root to live the same three steps in the lab: real MariaDB, real WordPress, kubectl)"
  exit 0
fi
exec "$root/examples/wordpress-lab/demo.sh" "$(dirname "$netpol")"
