#!/usr/bin/env bash
# The data API benchmark (BENCHMARKS.md): installs the load generator, builds release
# binaries, serves the demo on each engine and measures the API against the engine's
# own limit on the same SQL. Extra arguments go to uplift-bench (e.g. --rows 100000).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v pgbench >/dev/null || { apt-get update -qq && apt-get install -y -qq postgresql-client; }
pg_isready -h 127.0.0.1 -p 5432 -q || pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
cargo build --release -p uplift-cli -p uplift-bench
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/uplift-bench" api --uplift "$target/release/uplift" "$@"
