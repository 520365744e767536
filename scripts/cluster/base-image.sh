#!/usr/bin/env bash
# The Debian 12 base images deploy/Containerfile (and the cluster's other images) start
# from, made here without any registry: a minimal Debian 12 root file system from
# debootstrap, committed with buildah into the local container storage that podman
# builds read, under the names a user's podman would pull:
#
#   docker.io/library/debian:12        debootstrap --variant=minbase bookworm
#   docker.io/library/debian:12-slim   the same, without documentation, manual pages and
#                                      translations (and dpkg told to leave them out of
#                                      what is installed later), as Debian's -slim images
#
#   scripts/cluster/base-image.sh           # skips an image that exists
#   scripts/cluster/base-image.sh --force   # remakes both
#
# Root. Needs debootstrap and buildah (scripts/cluster/install-deps.sh) and Debian's
# mirror (NETPOL_DEBIAN_MIRROR, default http://deb.debian.org/debian). Nothing here
# touches the network configuration: debootstrap runs in a chroot, buildah only copies
# and commits.
set -euo pipefail
# shellcheck source=scripts/cluster/lib.sh
source "$(dirname "$0")/lib.sh"

mirror="${NETPOL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
full=docker.io/library/debian:12
slim=docker.io/library/debian:12-slim

force=0
case "${1:-}" in
  "") ;;
  --force) force=1 ;;
  *) die "usage: $0 [--force]" ;;
esac

[ "$(id -u)" -eq 0 ] || die "base-image: run as root (debootstrap, container storage)"
for tool in debootstrap buildah; do
  command -v "$tool" >/dev/null || die "base-image: $tool is missing (scripts/cluster/install-deps.sh)"
done

exists() { podman image exists "$1"; }
if [ "$force" -eq 0 ] && exists "$full" && exists "$slim"; then
  log "base images present: $full, $slim"
  exit 0
fi

work="$(mktemp -d /var/tmp/netpol-base.XXXXXX)"
container=""
cleanup() {
  [ -n "$container" ] && buildah rm "$container" >/dev/null 2>&1
  # debootstrap may leave /proc or /sys of the chroot mounted when it fails.
  for m in proc sys dev/pts dev; do
    mountpoint -q "$work/rootfs/$m" 2>/dev/null && umount -l "$work/rootfs/$m"
  done
  rm -rf "$work"
}
trap cleanup EXIT

log "debootstrap: Debian 12 (bookworm) minbase from $mirror (a few minutes)"
if ! debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
  tail -20 "$work/debootstrap.log" >&2
  die "base-image: debootstrap failed"
fi

rootfs="$work/rootfs"
# As Debian's official images: no package lists (`apt-get update` first), no downloaded
# packages kept, no translations fetched.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
# The chroot's resolver configuration is the host's at debootstrap time: a container's
# runtime provides its own.
: >"$rootfs/etc/resolv.conf"
rm -f "$rootfs/etc/hostname"

# commit TAR NAME: an image of the file system in TAR (extracted by buildah add).
commit() {
  container="$(buildah from scratch)"
  buildah add "$container" "$1" / >/dev/null
  buildah config --cmd '["bash"]' --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --os linux --arch amd64 "$container"
  buildah commit --rm --quiet "$container" "$2" >/dev/null
  container=""
  log "committed $2 ($(buildah images --format '{{.Size}}' "$2" | head -1))"
}

# Device nodes, /proc and /sys come from the runtime, not the image.
pack() { tar -C "$rootfs" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf "$1" .; }

if [ "$force" -eq 1 ] || ! exists "$full"; then
  pack "$work/full.tar"
  commit "$work/full.tar" "$full"
fi

if [ "$force" -eq 1 ] || ! exists "$slim"; then
  # What debuerreotype-slimify does for Debian's -slim images: these paths are left out
  # now and, through dpkg's configuration, from every package installed later.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/groff/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/linda/* \
    "$rootfs"/usr/share/lintian/overrides/* "$rootfs"/usr/share/man/*
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  pack "$work/slim.tar"
  commit "$work/slim.tar" "$slim"
fi
