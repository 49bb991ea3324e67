#!/usr/bin/env bash
# Runs the browser tests against BIN (the uplift binary) and prints cargo-style
# `test result:` lines, so .ci/run counts them with the rest: once on SQLite, and once
# more with the demo on PostgreSQL when UPLIFT_TEST_POSTGRES names a server (a
# uniquely named database, dropped after). With UPLIFT_REQUIRE_POSTGRES=1 a missing
# server fails the run instead of skipping the PostgreSQL round.
set -uo pipefail
bin="$(realpath "$1")"
cd "$(dirname "$0")"

# One round of the tests; `$1` names it in the result line.
round() {
  local name="$1" out status pass fail
  out="$(mktemp)"
  UPLIFT_BIN="$bin" node --test --test-reporter=spec ui.test.mjs 2>&1 | tee "$out"
  status="${PIPESTATUS[0]}"
  pass="$(grep -E '^ℹ pass [0-9]+' "$out" | grep -oE '[0-9]+' | tail -1)"
  fail="$(grep -E '^ℹ fail [0-9]+' "$out" | grep -oE '[0-9]+' | tail -1)"
  echo "test result: browser. ${pass:-0} passed; ${fail:-1} failed ($name)"
  return "$status"
}

status=0
round sqlite || status=1

server="${UPLIFT_TEST_POSTGRES:-}"
if [ -z "$server" ] || ! psql "$server" -Atqc 'select 1' > /dev/null 2>&1; then
  if [ "${UPLIFT_REQUIRE_POSTGRES:-}" = 1 ]; then
    echo "test result: FAILED. 0 passed; 1 failed (browser on postgres: no server at '${server}')"
    exit 1
  fi
  echo "browser tests on PostgreSQL skipped: set UPLIFT_TEST_POSTGRES to a reachable server"
  exit "$status"
fi
db="uplift_browser_$$_$(date +%s)"
psql "$server" -Atqc "CREATE DATABASE $db" || exit 1
# The same server URL with the new database in place of its own.
export UPLIFT_DATABASE_URL="${server%/*}/$db"
round postgres || status=1
psql "$server" -Atqc "DROP DATABASE IF EXISTS $db WITH (FORCE)" > /dev/null
exit "$status"
