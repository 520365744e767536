#!/usr/bin/env bash
# Debian 12 packages the real-cluster tier needs (make cluster-deps): everything
# scripts/install-deps.sh installs, and the cluster's own (its --cluster profile).
# Idempotent; run as root.
exec "$(dirname "$0")/../install-deps.sh" --cluster
