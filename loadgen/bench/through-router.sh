#!/usr/bin/env bash
# `track` and `orders` against one fresh cell, straight and through the router in front of it,
# back to back. Trackers first: the order flow leaves thousands of ready orders waiting for
# drivers, which would take the trackers' drivers. Needs release builds:
#   cargo build --release -p cell -p router -p loadgen --bin cell --bin router --bin loadgen
# Usage: loadgen/bench/through-router.sh   (env: ORDERS_RATE=200 SECS=20 TRACKERS=50 OUT=dir)
set -euo pipefail
cd "$(dirname "$0")/../.."
ORDERS_RATE=${ORDERS_RATE:-200}; SECS=${SECS:-20}; TRACKERS=${TRACKERS:-50}
OUT=${OUT:-$(mktemp -d /tmp/through-router.XXXX)}
. loadgen/bench/lib.sh
start_cell_and_router
echo "cell $CELL_HTTP (QUIC $QUIC), router $ROUTER_HTTP; reports in $OUT"

base=2000000
for via in router direct; do
  if [ "$via" = direct ]; then T="http://$CELL_HTTP"; else T="http://$ROUTER_HTTP"; fi
  echo "== track via $via: $TRACKERS trackers (WebSocket via $via, drivers' QUIC to the cell)"
  "$L" track --target "$T" --quic "$QUIC" --quic-ca "$CA" --jwt-secret "$SECRET" --trackers "$TRACKERS" \
    --duration "${SECS}s" --driver-id-base "$base" --progress off --report-json "$OUT/track-$via.json" \
    >"$OUT/track-$via.txt" 2>&1 || true
  tail -4 "$OUT/track-$via.txt"
  base=$((base + 1000000))
done
for via in router direct; do
  if [ "$via" = direct ]; then T="http://$CELL_HTTP"; PID=$CELLPID; else T="http://$ROUTER_HTTP"; PID=$ROUTERPID; fi
  echo "== orders via $via: $ORDERS_RATE/s for ${SECS}s"
  "$L" orders --target "$T" --jwt-secret "$SECRET" --rate "$ORDERS_RATE" --duration "${SECS}s" --ramp-up 3s \
    --target-pid "$PID" --progress off --report-json "$OUT/orders-$via.json" >"$OUT/orders-$via.txt" 2>&1 || true
  grep -E "^(op|search|menu|quote|place|accept|preparing|ready|order) " "$OUT/orders-$via.txt" || tail -5 "$OUT/orders-$via.txt"
done
