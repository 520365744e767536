#!/usr/bin/env bash
# The guide lived end to end (root; CI runs it): examples/wordpress-lab/demo.sh
# with real MariaDB and WordPress in the lab, checked at each step. In CI a
# missing prerequisite fails; elsewhere it skips (exit 77, ctest's skip code).
set -uo pipefail
bin=${1:?bin dir}
root=$(cd "$(dirname "$0")/../.." && pwd)
missing=""
[ "$(id -u)" = 0 ] || missing="root"
for tool in kubectl mariadbd php curl ip; do command -v "$tool" >/dev/null || missing="$missing $tool"; done
[ -d /usr/share/wordpress ] || missing="$missing wordpress"
if [ -n "$missing" ]; then
  echo "missing: $missing"
  [ "${CI:-}" = true ] && exit 1
  exit 77
fi
export LAB_DIR="/tmp/npwp$$" LAB_NAME="npwp$$"
out=$("$root/examples/wordpress-lab/demo.sh" "$bin" 2>&1)
rc=$?
echo "$out"
fail=0
expect() {  # expect DESCRIPTION PATTERN
  if ! grep -qE "$2" <<<"$out"; then
    echo "FAILED: $1 (no line matching: $2)"
    fail=1
  fi
}
[ $rc -eq 0 ] || { echo "FAILED: the walkthrough exited with $rc"; fail=1; }
expect "step 1: WordPress serves its page" 'WordPress answers: HTTP 200; title: netpol lab'
expect "step 2: WordPress loses its database" 'HTTP 500; "Error establishing a database connection"'
expect "step 2: kubectl shows WordPress not ready" 'np-test-wordpress-[a-z0-9]+-[a-z0-9]+ +0/1'
expect "step 3: the client still cannot reach MariaDB" 'client -> MariaDB \(mariadb -h np-test-mariadb\): cannot connect'
expect "step 1: the client reached MariaDB before any policy" 'client -> MariaDB \(mariadb -h np-test-mariadb\): connected'
[ "$(grep -c ' 0 differ' <<<"$out")" -eq 3 ] || { echo "FAILED: lab probe differs from the engine at some step"; fail=1; }
[ "$(ip netns list | grep -c "^$LAB_NAME-")" -eq 0 ] || { echo "FAILED: namespaces left behind"; fail=1; }
exit $fail
