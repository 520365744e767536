#!/usr/bin/env bash
# Builds the real-cluster tier's upstream components from the Go modules pinned in
# cluster/modules/*/go.mod (etcd, Kubernetes, the e2e suite, agnhost, containerd, CoreDNS,
# Helm, the network-policy-api conformance suite) into build/cluster/bin. Cached: a
# component is rebuilt only when its module's go.mod/go.sum (or this script) changed, and
# Go's build cache makes a rebuild incremental.
#
#   scripts/cluster/build-components.sh [component ...]   # default: all
#
# Components: etcd kubernetes e2e containerd coredns helm cnp
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
modules="$root/cluster/modules"
out="${NETPOL_CLUSTER_BIN:-$root/build/cluster/bin}"
stamps="$out/.stamps"
mkdir -p "$out" "$stamps"

# Module downloads only from the proxy, verified against go.sum; nothing else.
export GOFLAGS="-mod=readonly -buildvcs=false -trimpath"
export GOTOOLCHAIN=local

k8s_version="$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$modules/kubernetes/go.mod")"
k8s_minor="$(echo "$k8s_version" | cut -d. -f2)"
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# fresh NAME MODULE BIN...: true when every BIN exists and the stamp matches the module.
stamp_of() { cat "$modules/$1/go.mod" "$modules/$1/go.sum" "$0" | sha256sum | cut -c1-16; }
fresh() {
  local name="$1" module="$2"; shift 2
  [ -f "$stamps/$name" ] && [ "$(cat "$stamps/$name")" = "$(stamp_of "$module")" ] || return 1
  for b in "$@"; do [ -x "$out/$b" ] || return 1; done
}
done_stamp() { stamp_of "$2" > "$stamps/$1"; }

build_etcd() {
  fresh etcd etcd etcd etcdctl && return
  log "building etcd $(awk '/go.etcd.io\/etcd\/server\/v3 v/ {print $2}' "$modules/etcd/go.mod")"
  (cd "$modules/etcd" && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3 \
    && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$out/etcdctl" go.etcd.io/etcd/etcdctl/v3)
  done_stamp etcd etcd
}

build_kubernetes() {
  local bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl agnhost)
  fresh kubernetes kubernetes "${bins[@]}" && return
  for b in "${bins[@]}"; do
    local pkg="k8s.io/kubernetes/cmd/$b"
    [ "$b" = agnhost ] && pkg="k8s.io/kubernetes/test/images/agnhost"
    log "building $b $k8s_version"
    (cd "$modules/kubernetes" && CGO_ENABLED=0 go build -ldflags "-s -w $k8s_ldflags" -o "$out/$b" "$pkg")
  done
  done_stamp kubernetes kubernetes
}

build_e2e() {
  fresh e2e kubernetes e2e.test ginkgo && return
  log "building e2e.test $k8s_version (the upstream suite; the slowest part) and the ginkgo runner"
  (cd "$modules/kubernetes" && CGO_ENABLED=0 go test -c -vet=off -ldflags "-s -w $k8s_ldflags" \
    -o "$out/e2e.test" k8s.io/kubernetes/test/e2e \
    && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$out/ginkgo" github.com/onsi/ginkgo/v2/ginkgo)
  done_stamp e2e kubernetes
}

build_containerd() {
  local bins=(containerd containerd-shim-runc-v2 ctr)
  fresh containerd containerd "${bins[@]}" && return
  local v; v="$(awk '/github.com\/containerd\/containerd\/v2 v/ {print $2}' "$modules/containerd/go.mod")"
  for b in "${bins[@]}"; do
    log "building $b $v"
    (cd "$modules/containerd" && CGO_ENABLED=0 go build -tags "no_btrfs no_devmapper no_zfs" \
      -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$v" \
      -o "$out/$b" "github.com/containerd/containerd/v2/cmd/$b")
  done
  done_stamp containerd containerd
}

build_coredns() {
  fresh coredns coredns coredns && return
  log "building coredns"
  (cd "$modules/coredns" && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$out/coredns" github.com/coredns/coredns)
  done_stamp coredns coredns
}

build_helm() {
  fresh helm helm helm && return
  local v; v="$(awk '/helm.sh\/helm\/v3 v/ {print $2}' "$modules/helm/go.mod")"
  log "building helm $v"
  (cd "$modules/helm" && CGO_ENABLED=0 go build \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$v" -o "$out/helm" helm.sh/helm/v3/cmd/helm)
  done_stamp helm helm
}

# The network-policy-api conformance suite: `go test -c` of its conformance package, with the
# SCTP-only edits of scripts/cluster/cnp-overlay.py (this kernel has no SCTP sockets).
build_cnp() {
  local overlay_py="$root/scripts/cluster/cnp-overlay.py"
  local stamp; stamp="$( (stamp_of network-policy-api; cat "$overlay_py") | sha256sum | cut -c1-16)"
  [ -x "$out/cnp-conformance.test" ] && [ "$(cat "$stamps/cnp" 2>/dev/null)" = "$stamp" ] && return
  local dir; dir="$(cd "$modules/network-policy-api" && go list -m -f '{{.Dir}}' sigs.k8s.io/network-policy-api)"
  log "building the network-policy-api conformance suite $(cd "$modules/network-policy-api" && go list -m -f '{{.Version}}' sigs.k8s.io/network-policy-api)"
  local work="$out/../cnp-suite"
  python3 "$overlay_py" "$dir" "$work"
  # Our module's go.mod/go.sum, the suite replaced by the edited copy.
  cp "$modules/network-policy-api/go.mod" "$work/go.mod"
  cp "$modules/network-policy-api/go.sum" "$work/go.sum"
  echo "replace sigs.k8s.io/network-policy-api => ./network-policy-api" >>"$work/go.mod"
  (cd "$work" && CGO_ENABLED=0 go test -c -vet=off -ldflags "-s -w" \
    -o "$out/cnp-conformance.test" sigs.k8s.io/network-policy-api/conformance)
  echo "$stamp" >"$stamps/cnp"
}

if ! command -v go >/dev/null 2>&1; then
  echo "build-components: no Go toolchain (go) on PATH; the cluster tier builds Kubernetes from Go modules" >&2
  exit 1
fi
go_minor="$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')"
if [ "$go_minor" -lt 24 ]; then
  echo "build-components: Go $(go env GOVERSION) is too old; these modules need Go 1.24 or newer" >&2
  exit 1
fi

components=("$@")
[ "${#components[@]}" -eq 0 ] && components=(etcd kubernetes containerd coredns helm e2e cnp)
start=$SECONDS
for c in "${components[@]}"; do
  case "$c" in
    etcd|kubernetes|e2e|containerd|coredns|helm|cnp) "build_$c" ;;
    *) echo "build-components: unknown component '$c' (etcd kubernetes e2e containerd coredns helm cnp)" >&2; exit 2 ;;
  esac
done
log "components ready in $out ($((SECONDS - start)) s)"
