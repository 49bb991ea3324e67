#!/usr/bin/env bash
# Step 2 benchmark (BENCHMARKS.md): serves the demo on each engine with 1 000 generated
# apps and 1 000 generated flows, runs step 1 through the API and times the server's
# verification of every item; the pure rewrite and static checks are timed in-process.
# Extra arguments go to `uplift-bench step2` (e.g. --rows 100000).
set -euo pipefail
cd "$(dirname "$0")/.."
pg_isready -h 127.0.0.1 -p 5432 -q || pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
cargo build --release -p uplift-cli -p uplift-bench
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/uplift-bench" step2 --uplift "$target/release/uplift" "$@"
