#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and benchmarking netpol needs.
# Idempotent: packages already present are skipped, and apt is not touched at all when
# nothing is missing. Run as root (CI and `make` targets call it).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  clang-14 libclang-rt-14-dev
  # style checks (`make lint`, part of `make test`)
  clang-format-14 clang-tidy-14
  # libraries
  libyaml-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libnftables-dev libnftnl-dev libmnl-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # node tooling used by the dataplane and e2e tiers
  iproute2 nftables bc
  # the reference CNI plugins our chaining tests run beside netpol-cni
  containernetworking-plugins
  # the lab: its API server (HTTP), state (SQLite); the agent's API client
  libcpp-httplib-dev libsqlite3-dev libcurl4-openssl-dev
  # the guide's real workloads in the lab (make demo and its end-to-end test)
  mariadb-server wordpress wordpress-theme-twentytwentythree php-cli php-mysql curl
  # promtool, which checks the agent's /metrics output in tests; openssl, which makes the
  # certificates of the API client's TLS tests
  prometheus openssl
  # jq, which deploy/install-cni.sh (the DaemonSet's CNI installer) uses; its tests run it
  jq
)

# kubectl for the lab's tests and `make demo`: any kubectl works against the lab
# (1.20 from Debian's kubernetes-client, or a newer one already installed).
if ! command -v kubectl >/dev/null 2>&1; then
  packages+=(kubernetes-client)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The prometheus package is here for promtool only: a server it started under
# systemd is stopped and disabled again (nothing is started without systemd).
if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
  systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
echo "install-deps: done"
