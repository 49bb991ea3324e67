#!/usr/bin/env bash
# Runs the browser tests against BIN (the uplift binary) and prints cargo-style
# `test result:` lines, so .ci/run counts them with the rest.
set -uo pipefail
bin="$(realpath "$1")"
cd "$(dirname "$0")"
out="$(mktemp)"
UPLIFT_BIN="$bin" node --test --test-reporter=spec ui.test.mjs 2>&1 | tee "$out"
status="${PIPESTATUS[0]}"
pass="$(grep -E '^ℹ pass [0-9]+' "$out" | grep -oE '[0-9]+' | tail -1)"
fail="$(grep -E '^ℹ fail [0-9]+' "$out" | grep -oE '[0-9]+' | tail -1)"
echo "test result: browser. ${pass:-0} passed; ${fail:-1} failed"
exit "$status"
