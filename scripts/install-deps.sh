#!/usr/bin/env bash
# Installs the Debian 12 packages netpol needs. Idempotent: packages already present are
# skipped, and apt is not touched at all when nothing is missing. Run as root (CI and
# `make` targets call it).
#
#   scripts/install-deps.sh           # everything: building, testing, benchmarking, the guide
#   scripts/install-deps.sh --build   # only building the product (netpold, netpol-cni, netpol)
#                                     # with -DNETPOL_BUILD_TESTS=OFF -DNETPOL_BUILD_BENCH=OFF:
#                                     # the image's build stage (deploy/Containerfile)
#   scripts/install-deps.sh --cluster # everything, and what the real-cluster tier needs
#                                     # (make cluster-up: runc, buildah, podman, ...)
set -euo pipefail

profile=all
case "${1:-}" in
  "") ;;
  --build) profile=build ;;
  --cluster) profile=cluster ;;
  *) echo "usage: $0 [--build|--cluster]" >&2; exit 2 ;;
esac

# Building the product: the toolchain and the libraries netpold, netpol-cni and netpol
# link (nftables for the dataplane, curl and cpp-httplib for the API clients and the lab,
# SQLite for the lab's state); binutils (objcopy, strip) comes with build-essential.
build_packages=(
  build-essential cmake ninja-build pkg-config
  libyaml-dev libsimdjson-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libnftables-dev libnftnl-dev libmnl-dev
  libcpp-httplib-dev libsqlite3-dev libcurl4-openssl-dev libssl-dev
)

# No flag: those and everything testing, linting, fuzzing, benchmarking and the guide need.
packages=(
  "${build_packages[@]}"
  git
  # clang for the fuzz targets, its sanitizer runtimes
  clang-14 libclang-rt-14-dev
  # style checks (`make lint`, part of `make test`)
  clang-format-14 clang-tidy-14
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # node tooling used by the dataplane and e2e tiers
  iproute2 nftables bc
  # the reference CNI plugins our chaining tests run beside netpol-cni
  containernetworking-plugins
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

# Node.js and npm for the test that drives the lab with the official JavaScript client
# (tests/lab/client-node), unless a Node.js with npm is already installed.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

if [ "$profile" = build ]; then
  packages=("${build_packages[@]}")
fi
# The real-cluster tier: runc for the nodes' containerd, buildah/podman to build images as
# users do, debootstrap for the Debian base image, socat to reach the API server from the
# root namespace, iptables/conntrack for kube-proxy. Go (1.24 or newer, the machine's:
# Debian 12's is too old for the pinned modules) builds the upstream components.
if [ "$profile" = cluster ]; then
  packages+=(runc buildah podman debootstrap socat iptables conntrack util-linux ca-certificates)
fi

# That client, at the version package-lock.json pins (into tests/lab/client-node/node_modules).
install_client_node() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/lab/client-node"
  if [ "$profile" != build ] && [ ! -d "$dir/node_modules/@kubernetes/client-node" ] && command -v npm >/dev/null 2>&1; then
    echo "install-deps: npm ci in $dir"
    npm ci --prefix "$dir" --no-audit --no-fund >/dev/null
  fi
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  install_client_node
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
install_client_node
echo "install-deps: done"
