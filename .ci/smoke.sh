#!/usr/bin/env bash
# Smoke test of a compiled fluxhook executable (ci.yml runs it on amd64 and arm64): start it on the
# example receivers in dry run, deliver the README's signed push, read /metrics, then SIGTERM it.
#   bash .ci/smoke.sh dist/fluxhook
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$1"
log="$(mktemp)"
"$bin" --receivers-file=examples/receivers.yaml --dry-run \
  --receiverAddr=127.0.0.1:19292 --health-addr=127.0.0.1:19440 --metrics-addr=127.0.0.1:18080 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; cat "$log"' EXIT

for _ in $(seq 100); do
  curl -fsS -o /dev/null http://127.0.0.1:19440/readyz 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null http://127.0.0.1:19440/readyz

# The README's example: the example token, receiver github-receiver in flux-system.
body='{"ref":"refs/heads/main","repository":{"full_name":"example/webapp"}}'
sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac example-token-do-not-use | sed 's/.* //')
path=/hook/$(printf '%s' "example-token-do-not-usegithub-receiverflux-system" | sha256sum | cut -d' ' -f1)
answer=$(curl -sS -w '\n%{http_code}' "http://127.0.0.1:19292$path" -H 'Content-Type: application/json' \
  -H 'X-GitHub-Event: push' -H 'X-GitHub-Delivery: 00000000-0000-4000-8000-000000000000' \
  -H "X-Hub-Signature-256: sha256=$sig" -d "$body")
echo "$answer"
test "$(tail -n1 <<<"$answer")" = 200
grep -q 'target annotated' <<<"$answer"

curl -fsS http://127.0.0.1:18080/metrics | grep -q '^gotk_receiver_http_request_duration_seconds_count{'

kill -TERM "$pid"
wait "$pid"
trap - EXIT
grep -q 'shutting down' "$log"
echo "smoke test passed: $bin"
