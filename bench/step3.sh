#!/usr/bin/env bash
# Step 3 benchmark, the lost-write checker (BENCHMARKS.md): on fresh copies of the demo
# at each size, on each engine, steps 1 and 2 through the API, then 200 writes/s
# through idle time and the whole of step 3; every written record looked up after.
# Extra arguments go to `uplift-bench step3` (e.g. --sizes 100000 --engines sqlite).
set -euo pipefail
cd "$(dirname "$0")/.."
pg_isready -h 127.0.0.1 -p 5432 -q || pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
cargo build --release -p uplift-cli -p uplift-bench
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/uplift-bench" step3 --uplift "$target/release/uplift" "$@"
