#!/usr/bin/env bash
# Starts the local city: a Berlin cell with demo data (3,000 restaurants), then prints
# where to look. Ctrl-C stops everything. Run through `./dev city`.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=target/release/cell
SIM=target/release/drivesim
CFG=infra/local/cell-berlin.toml
mkdir -p .data
LOG=.data/cell-berlin.log

"$BIN" run --config "$CFG" >.data/cell-berlin.ready 2>"$LOG" &
PID=$!
SIMPID=
trap 'kill $SIMPID $PID 2>/dev/null; wait $PID 2>/dev/null; echo; echo "city stopped"' EXIT INT TERM

printf 'starting the Berlin cell (first start seeds demo data)'
for _ in $(seq 1 120); do
  grep -q '^READY' .data/cell-berlin.ready 2>/dev/null && break
  kill -0 $PID 2>/dev/null || { echo; echo "cell exited; see $LOG"; tail -20 "$LOG"; exit 1; }
  printf '.'; sleep 0.5
done
echo
READY=$(grep '^READY' .data/cell-berlin.ready | sed 's/^READY //')
HTTP=$(echo "$READY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["http"])')
QUIC=$(echo "$READY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["quic"])')
CA=$(echo "$READY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["quic_ca"])')
CUST=$("$BIN" token --config "$CFG" --role customer --sub 42)

# Live deliveries: 30 simulated drivers over QUIC and simulated customers ordering 20 a
# minute, 10x faster than real time.
"$SIM" --http "http://$HTTP" --quic "$QUIC" --ca "$CA" --drivers 30 --orders-per-min 20 \
  --dev-tokens --speedup 10 --status-every 10 >.data/drivesim.log 2>&1 &
SIMPID=$!
DRV=$("$BIN" token --config "$CFG" --role driver --sub 7)

cat <<MSG

  Local city is up.
    cell "berlin"   http://$HTTP     (REST + WebSocket)
    driver QUIC     $QUIC           (dev CA: $CA)
    metrics         http://$HTTP/metrics
    OpenAPI         http://$HTTP/api/v1/openapi.json
    logs            $LOG
    live deliveries .data/drivesim.log (30 simulated drivers, 20 orders/min)

  Try it (a customer token is in \$CUST below):
    CUST=$CUST
    curl -s -H "Authorization: Bearer \$CUST" "http://$HTTP/api/v1/restaurants?lat=52.52&lng=13.405&radius=2km" | head -c 600
    curl -s -H "Authorization: Bearer \$CUST" "http://$HTTP/api/v1/restaurants/<id>/menu" | head -c 600
  More tokens: ./dev token customer|restaurant|driver|admin <id>
  A driver token (id 7): $DRV

  Watch an order move: pick one from the simulator's log or list a customer's orders, then
    curl -s -H "Authorization: Bearer \$CUST" "http://$HTTP/api/v1/orders?customer=me"
    tail -f .data/drivesim.log

  Ctrl-C to stop.
MSG
wait $PID
