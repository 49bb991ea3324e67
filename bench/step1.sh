#!/usr/bin/env bash
# Step 1 benchmark (BENCHMARKS.md): serves the demo on each engine, runs step 1 through
# the API, then the same transform as hand-written SQL and an untransformed clone.
# Extra arguments go to `uplift-bench step1` (e.g. --rows 100000).
set -euo pipefail
cd "$(dirname "$0")/.."
pg_isready -h 127.0.0.1 -p 5432 -q || pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
cargo build --release -p uplift-cli -p uplift-bench
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/uplift-bench" step1 --uplift "$target/release/uplift" "$@"
