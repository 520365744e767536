#!/usr/bin/env bash
# Debian 12 packages the real-cluster tier needs on top of scripts/install-deps.sh:
# runc for the nodes' containerd, buildah/podman to build images as users do, debootstrap
# for the Debian base image, socat to reach the API server from the root namespace,
# iptables/conntrack for kube-proxy. Go (1.24 or newer, the machine's: Debian 12's is too
# old for these modules) builds the upstream components.
# Idempotent; run as root.
set -euo pipefail
"$(dirname "$0")/../install-deps.sh"

packages=(runc buildah podman debootstrap socat iptables conntrack util-linux
  containernetworking-plugins ca-certificates)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "cluster install-deps: all packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "cluster install-deps: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi
echo "cluster install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "cluster install-deps: done"
