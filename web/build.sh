#!/usr/bin/env bash
# Copies the vendored map library (Leaflet, pinned in package-lock.json) into static/vendor/.
# The output is committed, so nothing is built when the binaries are: run this after changing
# the Leaflet version (`npm ci` first), and commit static/vendor/.
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules/leaflet ] || npm ci --no-audit --no-fund
rm -rf static/vendor
mkdir -p static/vendor/leaflet
cp node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css static/vendor/leaflet/
cp node_modules/leaflet/LICENSE static/vendor/leaflet/LICENSE
echo "static/vendor/leaflet: $(du -sh static/vendor/leaflet | cut -f1)"
