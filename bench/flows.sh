#!/usr/bin/env bash
# Flow runtime benchmark (BENCHMARKS.md): record-triggered runs per second end to end,
# and the lag from commit to finished run under a steady write load, on each engine.
# Extra arguments go to `uplift-bench flows` (e.g. --engines sqlite).
set -euo pipefail
cd "$(dirname "$0")/.."
pg_isready -h 127.0.0.1 -p 5432 -q || pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
cargo build --release -p uplift-cli -p uplift-bench
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/uplift-bench" flows --uplift "$target/release/uplift" --rows 10000 "$@"
