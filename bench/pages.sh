#!/usr/bin/env bash
# The web UI's page times (BENCHMARKS.md): the demo at its default size on each
# engine; every page asked for 20 times through a signed-in session, before, during
# and after an upgrade. Extra arguments go to `uplift-bench pages` (e.g. --engines sqlite).
set -euo pipefail
cd "$(dirname "$0")/.."
pg_isready -h 127.0.0.1 -p 5432 -q || pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
cargo build --release -p uplift-cli -p uplift-bench
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/uplift-bench" pages --rows 100000 --uplift "$target/release/uplift" "$@"
