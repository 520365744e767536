#!/usr/bin/env bash
# The real cluster's images, built here without any registry and saved as archives in
# build/cluster/images/ that cluster.sh imports into every node's containerd:
#
#   registry.k8s.io/pause:3.10.1                       cluster/images/pause (ours, static)
#   registry.k8s.io/e2e-test-images/agnhost:<e2e's>    agnhost from the pinned Kubernetes,
#                                                      on the Debian base (bash: conformance)
#   registry.k8s.io/e2e-test-images/agnhost:<cnp's>    the same image under the tag the
#                                                      network-policy-api suite's pods use
#   registry.k8s.io/coredns/coredns:<pinned>           CoreDNS from its pinned module
#   docker.io/library/netpol:latest                    deploy/Containerfile, as users build it
#   netpol.dev/mariadb:11, netpol.dev/wordpress:6     Debian's packages (examples/wordpress-chart)
#
#   scripts/cluster/images.sh [image ...]   # default: all; cached by their inputs
set -euo pipefail
source "$(dirname "$0")/lib.sh"

out="$NPC_ROOT/build/cluster/images"
mkdir -p "$out"
export STORAGE_DRIVER="${STORAGE_DRIVER:-overlay}"

k8s_mod_dir() {
  (cd "$NPC_ROOT/cluster/modules/kubernetes" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
}
# The agnhost tag the pinned e2e suite asks for (what `e2e.test --list-images` prints).
agnhost_ref() {
  local tag
  tag="$(sed -n 's/.*configs\[Agnhost\] = Config{list.PromoterE2eRegistry, "agnhost", "\([0-9.]*\)"}.*/\1/p' \
    "$(k8s_mod_dir)/test/utils/image/manifest.go")"
  [ -n "$tag" ] || die "cannot find agnhost's tag in the pinned e2e suite"
  echo "registry.k8s.io/e2e-test-images/agnhost:$tag"
}
# The agnhost tag the pinned network-policy-api conformance suite's base manifests use.
agnhost_cnp_ref() {
  local dir ref
  dir="$(cd "$NPC_ROOT/cluster/modules/network-policy-api" && go list -m -f '{{.Dir}}' sigs.k8s.io/network-policy-api)"
  ref="$(awk '$1=="image:" && $2 ~ /agnhost:/ {print $2; exit}' "$dir/conformance/base/manifests.yaml")"
  [ -n "$ref" ] || die "cannot find agnhost's tag in the network-policy-api suite's base manifests"
  echo "$ref"
}
coredns_ref() {
  echo "registry.k8s.io/coredns/coredns:$(awk '/github.com\/coredns\/coredns v/ {print $2}' \
    "$NPC_ROOT/cluster/modules/coredns/go.mod")"
}

# cached NAME INPUT...: true when NAME's archive exists and was made from these inputs.
cached() {
  local name="$1"; shift
  local stamp
  stamp="$( (cat "$0"; for f in "$@"; do if [ -d "$f" ]; then tar -C "$f" -c . 2>/dev/null; else cat "$f"; fi; done) | sha256sum | cut -c1-16)"
  echo "$stamp" >"$out/.$name.want"
  [ -f "$out/$name.tar" ] && [ -f "$out/.$name.stamp" ] && [ "$(cat "$out/.$name.stamp")" = "$stamp" ]
}
save() {
  local name="$1" ref="$2"
  rm -f "$out/$name.tar"
  podman save --format docker-archive -o "$out/$name.tar" "$ref" >/dev/null
  mv "$out/.$name.want" "$out/.$name.stamp"
  log "image $ref -> build/cluster/images/$name.tar ($(du -m "$out/$name.tar" | cut -f1) MB)"
}

# from_scratch REF ENTRYPOINT-JSON FILE:DEST...
from_scratch() {
  local ref="$1" entry="$2"; shift 2
  local ctr
  ctr="$(buildah from scratch)"
  local spec
  for spec in "$@"; do buildah copy "$ctr" "${spec%%:*}" "${spec#*:}" >/dev/null; done
  buildah config --entrypoint "$entry" --cmd '' "$ctr"
  buildah commit --rm -q "$ctr" "$ref" >/dev/null
}

image_pause() {
  local src="$NPC_ROOT/cluster/images/pause/pause.c"
  cached pause "$src" && return
  local tmp; tmp="$(mktemp -d)"
  gcc -O2 -static -o "$tmp/pause" "$src"
  strip "$tmp/pause"
  from_scratch registry.k8s.io/pause:3.10.1 '["/pause"]' "$tmp/pause:/pause"
  rm -rf "$tmp"
  save pause registry.k8s.io/pause:3.10.1
}

image_agnhost() {
  local ref; ref="$(agnhost_ref)"
  cached agnhost "$NPC_BIN/agnhost" && return
  local ctr; ctr="$(buildah from --pull=never docker.io/library/debian:12)"
  buildah copy "$ctr" "$NPC_BIN/agnhost" /agnhost >/dev/null
  # As upstream's Dockerfile: a container given no command pauses (the network-policy-api
  # suite's client containers run with no command and must stay up).
  buildah config --entrypoint '["/agnhost"]' --cmd '["pause"]' "$ctr"
  buildah commit --rm -q "$ctr" "$ref" >/dev/null
  save agnhost "$ref"
}

# The network-policy-api suite asks for an older agnhost tag; the pinned agnhost serves
# every subcommand its pods run (serve-hostname, netexec, porter, pause, connect).
image_agnhost_cnp() {
  local ref cnp_ref
  ref="$(agnhost_ref)"
  cnp_ref="$(agnhost_cnp_ref)"
  image_agnhost
  cached agnhost-cnp "$NPC_BIN/agnhost" "$out/.agnhost.stamp" && return
  podman tag "$ref" "$cnp_ref"
  save agnhost-cnp "$cnp_ref"
}

image_coredns() {
  local ref; ref="$(coredns_ref)"
  cached coredns "$NPC_BIN/coredns" && return
  from_scratch "$ref" '["/coredns"]' "$NPC_BIN/coredns:/coredns"
  save coredns "$ref"
}

image_netpol() {
  # The sources the image is built from: what deploy/Containerfile copies.
  cached netpol "$NPC_ROOT/deploy" "$NPC_ROOT/src" "$NPC_ROOT/CMakeLists.txt" "$NPC_ROOT/cmake" \
    "$NPC_ROOT/scripts/install-deps.sh" && return
  log "building the netpol image from deploy/Containerfile (a release build inside; minutes)"
  (cd "$NPC_ROOT" && podman build --network=host --pull=never -f deploy/Containerfile \
    -t docker.io/library/netpol:latest . >"$out/netpol-build.log" 2>&1) \
    || die "podman build of deploy/Containerfile failed; see $out/netpol-build.log"
  save netpol docker.io/library/netpol:latest
}

image_app() {
  local name="$1" dir="$NPC_ROOT/examples/wordpress-chart/images/$1"
  local ref="netpol.dev/$name:latest"
  cached "$name" "$dir" && return
  log "building $ref from Debian's packages"
  podman build --network=host --pull=never -t "$ref" "$dir" >"$out/$name-build.log" 2>&1 \
    || die "podman build of $dir failed; see $out/$name-build.log"
  save "$name" "$ref"
}

step "Debian 12 base image"
"$NPC_ROOT/scripts/cluster/base-image.sh"
images=("$@")
[ "${#images[@]}" -eq 0 ] && images=(pause agnhost agnhost-cnp coredns netpol mariadb wordpress)
for i in "${images[@]}"; do
  case "$i" in
    pause|agnhost|coredns|netpol) "image_$i" ;;
    agnhost-cnp) image_agnhost_cnp ;;
    mariadb|wordpress) image_app "$i" ;;
    *) die "unknown image '$i' (pause agnhost agnhost-cnp coredns netpol mariadb wordpress)" ;;
  esac
done
