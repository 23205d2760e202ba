#!/usr/bin/env bash
# Regenerates web/screenshots/*.png (the README's): builds the binaries, starts a throwaway
# local city (web/tests/local-city.sh) and photographs each page with chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p cell -p router -p driver-client --bins
[ -d web/node_modules/playwright-core ] || (cd web && npm ci --no-audit --no-fund)
web/tests/local-city.sh node web/tests/screenshots.mjs
ls -la web/screenshots
