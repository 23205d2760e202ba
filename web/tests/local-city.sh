#!/usr/bin/env bash
# Runs COMMAND against a throwaway local city on loopback (plain HTTP, free ports, temp data):
# Berlin (cell 1) and Munich (cell 2) with demo data behind a router, simulated drivers in
# Berlin. COMMAND sees ROUTER_URL; everything stops when it ends.
#
#   web/tests/local-city.sh node web/tests/e2e.mjs
#
# Binaries from BIN_DIR (default: target/debug, or $CARGO_TARGET_DIR/debug), built with
# `cargo build -p cell -p router -p driver-client --bins` first.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/debug}
for b in cell router drivesim; do
  [ -x "$BIN_DIR/$b" ] || { echo "$BIN_DIR/$b is missing: cargo build -p cell -p router -p driver-client --bins" >&2; exit 1; }
done
TMP=$(mktemp -d)
PIDS=()
trap 'kill ${PIDS[@]+"${PIDS[@]}"} 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM

# start NAME CMD...: stdout to $TMP/NAME.ready, stderr to $TMP/NAME.log; waits for READY.
start() {
  local name=$1; shift
  "$@" >"$TMP/$name.ready" 2>"$TMP/$name.log" &
  PIDS+=("$!")
  for _ in $(seq 1 240); do
    grep -q '^READY' "$TMP/$name.ready" 2>/dev/null && return
    kill -0 "${PIDS[-1]}" 2>/dev/null || { echo "$name exited:" >&2; tail -20 "$TMP/$name.log" >&2; exit 1; }
    sleep 0.25
  done
  echo "$name did not start" >&2; exit 1
}
field() { grep '^READY' "$TMP/$1.ready" | sed 's/^READY //' | python3 -c "import json,sys; print(json.load(sys.stdin)[\"$2\"])"; }

printf '[cell]\nname = "munich"\n[demo]\ncity_name = "Munich"\ncenter_lat = 48.1372\ncenter_lng = 11.5755\nradius_km = 3.0\nrestaurants = 300\n' >"$TMP/munich.toml"
printf '[demo]\nenabled = true\n[health]\ninterval_ms = 200\ntimeout_ms = 500\nfailure_threshold = 2\n[store]\npoll_ms = 100\n[limits]\nper_ip_rps = 0\nper_token_rps = 0\n' >"$TMP/router.toml"
start berlin "$BIN_DIR/cell" run --demo --cell-id 1 --listen 127.0.0.1:0 --quic-listen 127.0.0.1:0 --data-dir "$TMP/berlin"
start munich "$BIN_DIR/cell" run --demo --cell-id 2 --config "$TMP/munich.toml" --listen 127.0.0.1:0 --quic-listen 127.0.0.1:0 --data-dir "$TMP/munich"
start router "$BIN_DIR/router" run --config "$TMP/router.toml" --listen 127.0.0.1:0 --data-dir "$TMP/router"
ROUTER_URL="http://$(field router http)"
ADMIN=$("$BIN_DIR/router" token --config "$TMP/router.toml" --role admin)
for c in berlin munich; do
  curl -sf -o /dev/null -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d "{\"http\":\"$(field $c http)\"}" "$ROUTER_URL/admin/v1/cells"
done
"$BIN_DIR/drivesim" --http "http://$(field berlin http)" --router "$ROUTER_URL" --quic "$(field berlin quic)" \
  --ca "$(field berlin quic_ca)" --server-name "$(field berlin quic_server_name)" --dev-tokens \
  --drivers 12 --speedup "${SPEEDUP:-20}" --lat 52.52 --lng 13.405 --radius-km 1.5 --first-driver-id 870000 \
  --status-every 5 >"$TMP/drivesim.log" 2>&1 &
PIDS+=("$!")
echo "local city: router $ROUTER_URL (logs in $TMP until COMMAND ends)" >&2
ROUTER_URL="$ROUTER_URL" "$@"
