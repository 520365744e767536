#!/usr/bin/env bash
# Checks the netpol image built from deploy/Containerfile as a user builds it: its
# programs start inside it (the runtime libraries are there), netpol-cni is static (it
# runs on the node, outside the image), the binaries are stripped with their debug
# information kept apart, and what install-cni.sh uses is installed. Containers run
# with --network=none: nothing here touches the host's network.
#
#   scripts/cluster/test-image.sh [IMAGE]    # default netpol:latest (NETPOL_IMAGE)
#
# Exits non-zero when any check fails (each is reported).
set -uo pipefail
# shellcheck source=scripts/cluster/lib.sh
source "$(dirname "$0")/lib.sh"

image="${1:-${NETPOL_IMAGE:-netpol:latest}}"
podman image exists "$image" \
  || die "test-image: no image $image; build it: podman build -f deploy/Containerfile -t $image ."

failed=0
pass() { log "ok    $*"; }
fail() { log "FAIL  $*"; failed=1; }
# podman asks the runtime for generous limits of open files and processes by default,
# which a host without CAP_SYS_RESOURCE (a container, some VMs) cannot grant: these few
# short commands get modest ones.
run() { podman run --rm --network=none --pull=never --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 "$@"; }

# check NAME EXPECTED-TEXT COMMAND...: COMMAND succeeds and prints EXPECTED-TEXT.
check() {
  local name="$1" want="$2" out; shift 2
  if out="$("$@" 2>&1)" && [[ "$out" == *"$want"* ]]; then
    pass "$name"
  else
    fail "$name"
    printf '%s\n' "$out" | tail -15 | sed 's/^/        /'
  fi
}

step "image $image ($(podman image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1 / 1e6}'))"
check "netpold --help runs in the image" "--node-name" run "$image" /usr/local/sbin/netpold --help
check "netpol-cni VERSION runs in the image" '"supportedVersions"' \
  run -e CNI_COMMAND=VERSION "$image" /usr/local/bin/netpol-cni
check "netpol --help runs in the image" "Usage" run "$image" /usr/local/bin/netpol --help
if out="$(run "$image" ldd /usr/local/sbin/netpold /usr/local/bin/netpol 2>&1)" && [[ "$out" != *"not found"* ]]; then
  pass "no library netpold or netpol links is missing (ldd)"
else
  fail "libraries missing in the image (ldd):"
  printf '%s\n' "$out" | grep -E "not found|:" | sed 's/^/        /'
fi
check "install-cni.sh's tools are installed" "ok" run "$image" sh -c \
  'for t in jq curl nft cp mv; do command -v "$t" >/dev/null || { echo "missing $t"; exit 1; }; done; \
   test -x /usr/local/bin/install-cni.sh && echo ok'
check "the default command is the agent" "/usr/local/sbin/netpold" \
  podman image inspect --format '{{json .Config.Cmd}}' "$image"

# The files themselves, read on this host (binutils is not in the image).
dir="$(mktemp -d)"
container="$(podman create --pull=never "$image")" || die "test-image: podman create $image failed"
trap 'podman rm "$container" >/dev/null 2>&1; rm -rf "$dir"' EXIT
for f in /usr/local/sbin/netpold /usr/local/bin/netpol /usr/local/bin/netpol-cni; do
  podman cp "$container:$f" "$dir/" || fail "copying $f out of the image"
done
for b in netpold netpol netpol-cni; do
  sections="$(readelf -SW "$dir/$b" 2>&1)"
  if [[ "$sections" == *".debug_info"* ]]; then
    fail "$b carries debug information ($(du -h "$dir/$b" | cut -f1))"
  elif [[ "$sections" != *".gnu_debuglink"* ]]; then
    fail "$b has no .gnu_debuglink to its separate debug file"
  else
    pass "$b stripped, debug information apart ($(du -h "$dir/$b" | cut -f1))"
  fi
done
if readelf -lW "$dir/netpol-cni" | grep "Requesting program interpreter" >/dev/null \
  || readelf -dW "$dir/netpol-cni" | grep NEEDED >/dev/null; then
  fail "netpol-cni is not static: $(readelf -dW "$dir/netpol-cni" | grep NEEDED | tr -s ' ' | tr '\n' ' ')"
else
  pass "netpol-cni is static (no interpreter, no shared library)"
fi

if [ "$failed" -ne 0 ]; then
  echo "test-image: $image failed the checks above" >&2
  exit 1
fi
log "test-image: $image passed"
