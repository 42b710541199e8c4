#!/usr/bin/env bash
# Builds what the cluster tier runs, from the Go module proxy, into the cache (never the repo):
#   - each upstream Go program of test/cluster/modules/<name>/ (a wrapper module: go.mod + go.sum,
#     made by modules/update.sh), built with the ordinary `go build`;
#   - Flux's CRDs, copied from the controllers' module zips (config/crd/bases);
#   - the fluxhook binary itself, compiled as the image ships it (dist/fluxhook).
# It then writes $CACHE/tier.env, the absolute paths and versions that test/cluster/plane.ts reads.
#
# A binary is keyed by its version and its wrapper's go.sum, so a bumped wrapper builds anew and a
# warm cache costs nothing. Go's own caches (GOMODCACHE, GOCACHE) make a rebuild fast too.
# Usage: test/cluster/build.sh [component ...]   (default: every wrapper module)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/fluxhook/cluster"
mkdir -p "$CACHE/bin"

# The machines have Go and the module proxy: a missing one is a failure, not a skip.
command -v go >/dev/null || { echo "build.sh: the cluster tier needs Go >= 1.26 (go not found)" >&2; exit 1; }
go_minor="$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')"
if [ "$go_minor" -lt 26 ]; then echo "build.sh: the cluster tier needs Go >= 1.26 (have $(go env GOVERSION))" >&2; exit 1; fi
# The machine's own Go, modules read-only as go.sum pins them, and static binaries.
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -modcacherw -trimpath" CGO_ENABLED=0

command -v etcd >/dev/null || { echo "build.sh: etcd not found (Debian: apt-get install etcd-server)" >&2; exit 1; }
etcd_have="$(etcd --version | sed -nE 's/^etcd Version: (.*)$/\1/p')"
if [ "$etcd_have" != "$ETCD_VERSION" ]; then
  echo "build.sh: etcd $etcd_have found, versions.env pins $ETCD_VERSION" >&2
  exit 1
fi

# package to build and -ldflags, per wrapper module
declare -A PACKAGE=(
  [kube-apiserver]="k8s.io/kubernetes/cmd/kube-apiserver"
  [notification-controller]="github.com/fluxcd/notification-controller"
  [source-controller]="github.com/fluxcd/source-controller"
  [kustomize-controller]="github.com/fluxcd/kustomize-controller"
)
k8s_minor="$(cut -d. -f2 <<<"$KUBERNETES_VERSION")"
# kube-apiserver reports the version it was stamped with (GET /version); upstream's Makefile stamps it so.
KUBE_LDFLAGS="-X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 \
-X k8s.io/component-base/version.gitMinor=$k8s_minor -X k8s.io/component-base/version.gitTreeState=clean \
-X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION"
declare -A LDFLAGS=([kube-apiserver]="$KUBE_LDFLAGS")

version_of() {
  case "$1" in
    kube-apiserver) echo "$KUBERNETES_VERSION" ;;
    notification-controller) echo "$NOTIFICATION_CONTROLLER_VERSION" ;;
    source-controller) echo "$SOURCE_CONTROLLER_VERSION" ;;
    kustomize-controller) echo "$KUSTOMIZE_CONTROLLER_VERSION" ;;
  esac
}

if [ $# -gt 0 ]; then components=("$@"); else
  components=()
  for dir in "$here"/modules/*/; do [ -f "$dir/go.mod" ] && components+=("$(basename "$dir")"); done
fi

tier_env="$CACHE/tier.env.tmp"
: >"$tier_env"
for name in "${components[@]}"; do
  dir="$here/modules/$name"
  [ -n "${PACKAGE[$name]:-}" ] || { echo "build.sh: no package known for $name" >&2; exit 1; }
  version="$(version_of "$name")"
  # The wrapper pins the version too: a versions.env bump without modules/update.sh is caught here.
  if ! grep -qE "^[[:space:]]*${PACKAGE[$name]%%/cmd/*} $version( |$)" "$dir/go.mod"; then
    echo "build.sh: modules/$name/go.mod does not require ${PACKAGE[$name]%%/cmd/*} $version; run test/cluster/modules/update.sh" >&2
    exit 1
  fi
  key="$(cat "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -c1-12)"
  bin="$CACHE/bin/$name-$version-$key"
  if [ ! -x "$bin" ]; then
    echo "build.sh: building $name $version (cold: minutes; see README's cluster section)"
    started=$(date +%s)
    go build -C "$dir" -ldflags "-s -w ${LDFLAGS[$name]:-}" -o "$bin.tmp" "${PACKAGE[$name]}"
    mv "$bin.tmp" "$bin"
    echo "build.sh: built $name in $(($(date +%s) - started)) s"
  fi
  echo "$(tr 'a-z-' 'A-Z_' <<<"$name")_BIN=$bin" >>"$tier_env"
done

# Flux's CRDs, from the controllers' module zips, verified against the checksum database by `go`.
crd_key="$(grep -E '_CONTROLLER_VERSION=' "$here/versions.env" | sha256sum | cut -c1-12)"
crds="$CACHE/crds-$crd_key"
if [ ! -d "$crds" ]; then
  tmp="$(mktemp -d)"
  for pair in "notification-controller $NOTIFICATION_CONTROLLER_VERSION" "source-controller $SOURCE_CONTROLLER_VERSION" \
    "kustomize-controller $KUSTOMIZE_CONTROLLER_VERSION" "helm-controller $HELM_CONTROLLER_VERSION" \
    "image-reflector-controller $IMAGE_REFLECTOR_CONTROLLER_VERSION"; do
    set -- $pair
    moddir="$(cd "$tmp" && GOFLAGS=-modcacherw go mod download -json "github.com/fluxcd/$1@$2" |
      sed -nE 's/^[[:space:]]*"Dir": "(.*)",?$/\1/p')"
    [ -d "$moddir/config/crd/bases" ] || { echo "build.sh: no CRDs in github.com/fluxcd/$1@$2" >&2; exit 1; }
    cp "$moddir"/config/crd/bases/*.yaml "$tmp/"
  done
  mkdir -p "$crds.tmp" && mv "$tmp"/*.yaml "$crds.tmp/" && rm -rf "$tmp" && mv "$crds.tmp" "$crds"
fi
echo "FLUX_CRDS=$crds" >>"$tier_env"

# The RBAC flux2's install gives its controllers (manifests/rbac: crd-controller for every
# controller, cluster-admin for kustomize-controller and helm-controller), from flux2's module zip.
rbac="$CACHE/flux-rbac-$FLUX2_VERSION"
if [ ! -d "$rbac" ]; then
  moddir="$(cd "$CACHE" && GOFLAGS=-modcacherw go mod download -json "github.com/fluxcd/flux2/v2@$FLUX2_VERSION" |
    sed -nE 's/^[[:space:]]*"Dir": "(.*)",?$/\1/p')"
  [ -f "$moddir/manifests/rbac/controller.yaml" ] || { echo "build.sh: no manifests/rbac in github.com/fluxcd/flux2/v2@$FLUX2_VERSION" >&2; exit 1; }
  mkdir -p "$rbac.tmp" && cp "$moddir"/manifests/rbac/{controller,reconciler}.yaml "$rbac.tmp/" && mv "$rbac.tmp" "$rbac"
fi
echo "FLUX_RBAC=$rbac" >>"$tier_env"

# fluxhook as users run it: the compiled binary (package.json build:server).
(cd "$repo" && node scripts/bun.js build --compile --minify --sourcemap server/main.ts --outfile dist/fluxhook >/dev/null)
echo "FLUXHOOK_BIN=$repo/dist/fluxhook" >>"$tier_env"
echo "ETCD_BIN=$(command -v etcd)" >>"$tier_env"
mv "$tier_env" "$CACHE/tier.env"

for name in "${components[@]}"; do
  var="$(tr 'a-z-' 'A-Z_' <<<"$name")_BIN"
  echo "build.sh: $name $(version_of "$name") at $(grep "^$var=" "$CACHE/tier.env" | cut -d= -f2-)"
done
echo "build.sh: etcd $etcd_have; Flux CRDs in $crds"
