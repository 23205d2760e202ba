#!/usr/bin/env bash
# 100K trackers per cell (issue 18 part 4): one release cell with a router in front, TRACKERS
# tracking WebSockets opened through the router on ORDERS live orders and held for DURATION
# seconds, optionally with `loadgen pings` at RATE alongside. Prints the cell's and the
# router's RSS growth per connection (measured with all trackers open and idle), connections
# dropped and ping → push p99. Needs release builds:
#   cargo build --release -p cell -p router -p loadgen --bin cell --bin router --bin loadgen
# Usage: loadgen/bench/trackers.sh   (env: TRACKERS=100000 DURATION=300 RATE=0 ORDERS=20
#        SOURCES=8 PING_INTERVAL=1s OUT=dir IDLE=0 VIA=router|direct CELL_EXTRA=toml)
# IDLE=1 leaves the orders unaccepted (no pushes after the snapshot); VIA=direct connects the
# trackers to the cell itself, for comparison.
#
# Ports: one source address reaches one destination through at most ~28K ephemeral ports
# (32768-60999), so the trackers connect from SOURCES loopback addresses 127.0.0.2, .3, …
# and the router reaches the cell from as many others (127.0.1.1, …: `[upstream]
# source_addrs`). Descriptors: the cell needs one per tracker, the router two; the script
# raises its own limit (we run as root; fs.nr_open is 1048576) and the processes inherit it.
set -euo pipefail
cd "$(dirname "$0")/../.."
TRACKERS=${TRACKERS:-100000}; DURATION=${DURATION:-300}; RATE=${RATE:-0}; ORDERS=${ORDERS:-20}
SOURCES=${SOURCES:-8}; PING_INTERVAL=${PING_INTERVAL:-1s}; IDLE=${IDLE:-0}; VIA=${VIA:-router}
OUT=${OUT:-$(mktemp -d /tmp/trackers.XXXX)}
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "descriptor limit $(ulimit -n); reports in $OUT"
mkdir -p "$OUT"
. loadgen/bench/lib.sh
for b in "$CELL" "$ROUTER" "$L"; do [ -x "$b" ] || { echo "missing $b (see the header)"; exit 1; }; done

# Both listeners admit more than the 100,000 connections they default to (trackers plus the
# health checks, the load generator's REST calls, and the router's pool).
CELL_TOML="$OUT/cell.toml"
printf '[http.edge]\nmax_connections = 250000\n%s\n' "${CELL_EXTRA:-}" >"$CELL_TOML"
upstream=$(for i in $(seq 1 "$SOURCES"); do printf '"127.0.1.%d",' "$i"; done)
ROUTER_TOML_EXTRA=$(printf '[http.edge]\nmax_connections = 250000\n[upstream]\nsource_addrs = [%s]\n' "${upstream%,}")
export CELL_TOML ROUTER_TOML_EXTRA
start_cell_and_router
echo "cell $CELL_HTTP (pid $CELLPID, QUIC $QUIC), router $ROUTER_HTTP (pid $ROUTERPID)"

if [ "$RATE" != 0 ]; then
  echo "pings: $RATE/s from 2000 drivers for ${DURATION}s alongside"
  "$L" pings --target "http://$CELL_HTTP" --quic "$QUIC" --quic-ca "$CA" --jwt-secret "$SECRET" \
    --drivers 2000 --rate "$RATE" --duration "$((DURATION + 120))s" --ramp-up 10s --share-sockets 32 \
    --progress off --report-json "$OUT/pings.json" >"$OUT/pings.out" 2>&1 &
  PIDS+=("$!")
fi

# The kernel's TCP memory (socket buffers: not in any process's RSS), every 5 s.
( while sleep 5; do awk '/^TCP:/{print $3, $NF}' /proc/net/sockstat; done >"$OUT/sockstat.txt" ) &
PIDS+=("$!")
last=$((SOURCES + 1))
idle=(); [ "$IDLE" = 1 ] && idle=(--idle)
TARGET=$ROUTER_HTTP; [ "$VIA" = direct ] && TARGET=$CELL_HTTP
"$L" trackers --target "http://$TARGET" --quic "$QUIC" --quic-ca "$CA" --jwt-secret "$SECRET" \
  --connections "$TRACKERS" --orders "$ORDERS" --sources "127.0.0.2-127.0.0.$last" \
  --duration "${DURATION}s" --ping-interval "$PING_INTERVAL" ${idle[@]+"${idle[@]}"} \
  --rss "cell=$CELLPID" --rss "router=$ROUTERPID" --report-json "$OUT/trackers.json" \
  2>&1 | tee "$OUT/trackers.out" || true

echo
echo "=== summary ($OUT) ==="
grep -E "^trackers against|^held|^ping → push|^rss|^dropped:|^open failure" "$OUT/trackers.out" || true
python3 - "$OUT/trackers.json" <<'EOF' || true
import json, sys
r = json.load(open(sys.argv[1]))
for m in r["rss"]:
    print(f'{m["name"]} RSS per connection: {m["per_connection_bytes"] / 1024:.2f} KiB')
print(f'connections opened {r["opened"]} of {r["requested"]}, dropped {r["dropped"]}, push p99 {r["ping_to_push_ms"]["p99"]:.1f} ms')
EOF
if [ "$RATE" != 0 ]; then grep -E "^sent |^loss:" "$OUT/pings.out" | sed 's/^/pings: /' || true; fi
sort -n -k2 "$OUT/sockstat.txt" | tail -1 | awk '{printf "kernel TCP memory at most %.0f MiB (%d sockets in use; socket buffers, in no process RSS)\n", $2 * 4096 / 1048576, $1}'
