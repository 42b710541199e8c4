#!/usr/bin/env bash
# Writes the wrapper module of each upstream Go program the cluster tier builds (go.mod + go.sum,
# committed), from the versions in ../versions.env. Run it after bumping a version there.
#
# Why a wrapper: `go install pkg@version` refuses a module whose go.mod has replace directives,
# and upstream's have them (k8s.io/kubernetes replaces its ./staging/ modules; Flux's controllers
# replace ./api). Replace directives of the main module are honoured, so a small main module that
# requires the program and restates upstream's replaces, pointing at published versions, builds
# it with the ordinary `go build`. No upstream source is copied: `go` fetches the module zips.
# Usage: test/cluster/modules/update.sh [name ...]   (default: every program below)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../versions.env
source "$here/../versions.env"
export GOTOOLCHAIN=local GOFLAGS=-modcacherw CGO_ENABLED=0

# The replace directives of an upstream go.mod, as "old new" lines (new is "./..." when local).
replaces() { go mod edit -json "$1" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    new = r["New"]["Path"] + ("@" + r["New"]["Version"] if r["New"].get("Version") else "")
    print(r["Old"]["Path"], new)'; }

# Starts a wrapper: a fresh go.mod at upstream's go and godebug lines (godebug lines of a
# dependency are ignored, so they are restated), then upstream's non-local replaces.
begin() { # name module version
  local dir="$here/$1" upstream
  rm -rf "$dir" && mkdir -p "$dir"
  upstream="$(go mod download -json "$2@$3" | sed -nE 's/^[[:space:]]*"GoMod": "(.*)",?$/\1/p')"
  printf 'module fluxhook.local/cluster/%s\n\n%s\n' "$1" "$(grep -E '^go [0-9]' "$upstream")" >"$dir/go.mod"
  grep -E '^godebug ' "$upstream" >>"$dir/go.mod" || true
  while read -r old new; do
    case "$new" in
      ./staging/*) (cd "$dir" && go mod edit -replace "$old=$old@v0.${KUBERNETES_VERSION#v1.}") ;;
      ./*) ;; # ./api: the published api module at the same tag is what `go get` resolves
      *) (cd "$dir" && go mod edit -replace "$old=$new") ;;
    esac
  done < <(replaces "$upstream")
  echo "$dir"
}

tool() { # name package@version
  local dir="$here/$1"
  (cd "$dir" && go get -tool "$2" && go mod verify >/dev/null)
  echo "update.sh: $1 -> $(grep -c . "$dir/go.sum") go.sum lines"
}

# Modules of a program's graph that the Go module proxy refuses ("403 Forbidden: This module version
# is not available"), each replaced by the nearest release it serves. source-controller v1.9.5 and
# v1.9.6 require github.com/fluxcd/pkg/artifact v0.18.3, which is refused; v0.18.0 is served, and
# fluxcd/pkg's history from artifact/v0.18.0 to artifact/v0.18.2 changes only go.mod and go.sum
# (dependency bumps; v0.18.3 is newer than the history at hand).
declare -A SUBSTITUTE=(
  [source-controller]="github.com/fluxcd/pkg/artifact=github.com/fluxcd/pkg/artifact@v0.18.0"
)

all=("$@")
sel() { [ ${#all[@]} -eq 0 ] || [[ " ${all[*]} " == *" $1 "* ]]; }

if sel kube-apiserver; then
  begin kube-apiserver k8s.io/kubernetes "$KUBERNETES_VERSION" >/dev/null
  tool kube-apiserver "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES_VERSION"
fi
for pair in "notification-controller $NOTIFICATION_CONTROLLER_VERSION" \
  "source-controller $SOURCE_CONTROLLER_VERSION" "kustomize-controller $KUSTOMIZE_CONTROLLER_VERSION"; do
  set -- $pair
  sel "$1" || continue
  # Only the programs that have a wrapper already are kept up to date; add one by making its folder.
  if [ ${#all[@]} -eq 0 ] && [ ! -d "$here/$1" ]; then continue; fi
  begin "$1" "github.com/fluxcd/$1" "$2" >/dev/null
  for substitute in ${SUBSTITUTE[$1]:-}; do (cd "$here/$1" && go mod edit -replace "$substitute"); done
  tool "$1" "github.com/fluxcd/$1@$2"
done
