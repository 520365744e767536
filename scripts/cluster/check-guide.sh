#!/usr/bin/env bash
# The guide on the running cluster, checked: examples/wordpress-chart/demo.sh exits 1 when
# a step does not happen as the guide says (WordPress restarted under default-deny,
# recovering with the allow policy, a client pod denied throughout).
exec "$(dirname "$0")/../../examples/wordpress-chart/demo.sh" "$@"
