#!/usr/bin/env bash
# Drives schemathesis (PyPI, tests/openapi/requirements.txt) against a live demo server
# for a bounded time. Usage: tests/openapi/run.sh UPLIFT_BINARY [SECONDS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$1"
budget="${2:-120}"
dir="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
"$bin" demo --rows 2000 --listen "127.0.0.1:$port" --data-dir "$dir/data" > "$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$port/api/health" > /dev/null && break
  sleep 0.5
done
token="$(cat "$dir/data/admin.token")"
# Deleting the environment, or revoking the token the run uses (schemathesis follows
# GET /api/tokens' ids into DELETE /api/tokens/{id}), would leave the rest of the run
# nothing to test; the Rust tests cover both.
schemathesis --config-file "$here/schemathesis.toml" run "http://127.0.0.1:$port/api/openapi.json" \
  -H "Authorization: Bearer $token" \
  --exclude-operation-id delete_env \
  --exclude-operation-id revoke_token \
  --phases examples,coverage,fuzzing --max-time "$budget" --workers 2 --seed 1
