#!/usr/bin/env bash
# Regenerates docs/screenshots/*.png (the README shows them) from a fresh demo walked
# through an upgrade in Debian's chromium. Needs `apt-get install chromium` and
# `npm ci --prefix tests/browser`; BIN defaults to the debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
bin="${1:-$target/debug/uplift}"
[ -x "$bin" ] || cargo build -p uplift-cli
UPLIFT_BIN="$(realpath "$bin")" OUT="$(pwd)/docs/screenshots" node tests/browser/screenshots.mjs
