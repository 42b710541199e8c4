#!/usr/bin/env bash
# `npm run bench`: installs what the benchmark needs, builds fluxhook as it ships, runs bench/main.ts.
#   - node_modules (npm ci) when autocannon or bun is missing;
#   - wrk and adnanh/webhook from Debian's packages when apt-get is there and we may use it (a
#     missing one is skipped with a message: autocannon replaces wrk, the webhook baseline is left out);
#   - the cluster tier's kube-apiserver and notification-controller (test/cluster/build.sh) for the
#     peer scenario, when Go and etcd are there;
#   - dist/fluxhook with `npm run build:server`, copied aside so a concurrent build cannot swap it mid-run.
# Arguments go to bench/main.ts (e.g. `npm run bench -- --seconds=10 --rounds=5`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f node_modules/bun/package.json ] || [ ! -f node_modules/autocannon/package.json ]; then
  echo "[bench] installing node modules (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
fi

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v webhook >/dev/null 2>&1 || missing+=(webhook)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "[bench] installing ${missing[*]} with apt-get" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >&2 ||
      echo "[bench] could not install ${missing[*]}; going on without" >&2
  else
    echo "[bench] ${missing[*]} not installed and apt-get is not usable here; going on without" >&2
  fi
fi

# The peer scenario (bench/peer.ts) runs notification-controller beside fluxhook on the cluster
# tier's kube-apiserver, both built from the Go module proxy by test/cluster/build.sh (minutes the
# first time, then cached). Without Go or etcd it is skipped with a message.
only="$(printf '%s\n' "$@" | sed -n 's/^--only=//p' | tail -1)"
if [ -z "$only" ] || [[ ",$only," == *",peer,"* ]]; then
  if command -v go >/dev/null 2>&1 && command -v etcd >/dev/null 2>&1; then
    echo "[bench] building the cluster tier for the peer scenario (test/cluster/build.sh)" >&2
    bash test/cluster/build.sh >&2 || echo "[bench] test/cluster/build.sh failed: the peer scenario will be skipped" >&2
  else
    echo "[bench] Go or etcd is missing: the peer scenario will be skipped (README, \"The cluster tier\")" >&2
  fi
fi

echo "[bench] building the server binary (npm run build:server)" >&2
npm run --silent build:server >&2
binary_dir=$(mktemp -d)
trap 'rm -rf "$binary_dir"' EXIT
cp dist/fluxhook "$binary_dir/fluxhook"

FLUXHOOK_BINARY="$binary_dir/fluxhook" node scripts/bun.js bench/main.ts "$@"
