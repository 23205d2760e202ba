#!/usr/bin/env bash
# Starts the local city: the router in front of two cells (Berlin and Munich, each with demo
# restaurants), registers the cells with the router, runs simulated drivers and customers,
# then prints where to look. Everything speaks TLS 1.3: a dev CA and certificates for the
# router and both cells are generated into .data/tls/ first (kept across runs), clients
# trust .data/tls/ca.pem. Ctrl-C stops everything. Run through `./dev city`.
set -euo pipefail
cd "$(dirname "$0")/../.."
CELL=target/release/cell
ROUTER=target/release/router
SIM=target/release/drivesim
mkdir -p .data
PIDS=()
trap 'kill ${PIDS[@]+"${PIDS[@]}"} 2>/dev/null; wait 2>/dev/null; echo; echo "city stopped"' EXIT INT TERM

json() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }

# start NAME CMD...: runs CMD with stdout to .data/NAME.ready, stderr to .data/NAME.log,
# and waits for its READY line.
start() {
  local name=$1; shift
  "$@" >".data/$name.ready" 2>".data/$name.log" &
  local pid=$!
  PIDS+=("$pid")
  printf 'starting %s' "$name"
  for _ in $(seq 1 240); do
    grep -q '^READY' ".data/$name.ready" 2>/dev/null && { echo; return; }
    kill -0 "$pid" 2>/dev/null || { echo; echo "$name exited; see .data/$name.log"; tail -20 ".data/$name.log"; exit 1; }
    printf '.'; sleep 0.5
  done
  echo; echo "$name did not start in 2 minutes; see .data/$name.log"; exit 1
}
ready() { grep '^READY' ".data/$1.ready" | sed 's/^READY //'; }

TLS=.data/tls
CA="$TLS/ca.pem"
"$ROUTER" dev-certs --out "$TLS" --name router --name cell-berlin --name cell-munich
start cell-berlin "$CELL" run --config infra/local/cell-berlin.toml
start cell-munich "$CELL" run --config infra/local/cell-munich.toml
start router "$ROUTER" run --config infra/local/router.toml
BERLIN=$(ready cell-berlin | json http)
MUNICH=$(ready cell-munich | json http)
ROUTER_HTTP=$(ready router | json http)
export ROUTER_URL="https://$ROUTER_HTTP" ROUTER_CA="$CA"
# Registering is idempotent: a cell already in the map only gets its endpoints refreshed
# (a map from a run before TLS moves to the https endpoints here).
"$ROUTER" cells add "https://$BERLIN" --config infra/local/router.toml >/dev/null
"$ROUTER" cells add "https://$MUNICH" --config infra/local/router.toml >/dev/null

# Live deliveries in both cities: simulated drivers over QUIC and customers ordering through
# the router, 10x faster than real time. Drivers follow handovers (ask the router where to go).
for spec in "berlin 52.5200 13.4050 900000" "munich 48.1372 11.5755 910000"; do
  read -r city lat lng first <<<"$spec"
  R=$(ready "cell-$city")
  "$SIM" --http "https://$(echo "$R" | json http)" --http-ca "$CA" --quic "$(echo "$R" | json quic)" \
    --ca "$(echo "$R" | json quic_ca)" --drivers 20 --orders-per-min 12 --lat "$lat" --lng "$lng" \
    --radius-km 5 --first-driver-id "$first" --dev-tokens --speedup 10 --status-every 10 \
    --router "https://$ROUTER_HTTP" \
    >".data/drivesim-$city.log" 2>&1 &
  PIDS+=("$!")
done
CUST=$("$ROUTER" token --config infra/local/router.toml --role customer --sub 42 --home 1)
ADMIN=$("$ROUTER" token --config infra/local/router.toml --role admin)

cat <<MSG

  Local city is up: one router in front of two cells, TLS 1.3 everywhere (dev CA: $CA).
    router          https://$ROUTER_HTTP  wss://$ROUTER_HTTP  (the entry point: REST + WebSocket for both cities)
    cell "berlin"   https://$BERLIN     cell "munich"   https://$MUNICH
    metrics         https://$ROUTER_HTTP/metrics  https://$BERLIN/metrics  https://$MUNICH/metrics
    logs            .data/router.log .data/cell-berlin.log .data/cell-munich.log
    live deliveries .data/drivesim-berlin.log .data/drivesim-munich.log (20 drivers each)

  Web pages (trust $CA in the browser, or accept its warning once; demo sign-in built in):
    customer https://$ROUTER_HTTP/   restaurant tablet https://$ROUTER_HTTP/restaurant?id=<restaurant id>
    operations console https://$ROUTER_HTTP/ops

  Try it through the router (a customer token whose home cell is Berlin is in \$CUST):
    CUST=$CUST
    curl -s --cacert $CA -H "Authorization: Bearer \$CUST" "https://$ROUTER_HTTP/api/v1/restaurants?lat=52.52&lng=13.405&radius=2km" | head -c 400
    curl -s --cacert $CA -H "Authorization: Bearer \$CUST" "https://$ROUTER_HTTP/api/v1/restaurants?lat=48.137&lng=11.575&radius=2km" | head -c 400
    curl -s --cacert $CA -H "Authorization: Bearer \$CUST" "https://$ROUTER_HTTP/api/v1/drivers/cell?lat=48.137&lng=11.575"
  Track an order: wss://$ROUTER_HTTP/ws/orders/<id>/track?token=\$CUST (trusting $CA)
  Operate it (ROUTER_URL=https://$ROUTER_HTTP ROUTER_CA=$CA):
    target/release/router cells list
    target/release/router regions move \$(target/release/router regions at 52.52 13.405) --to 2
    target/release/router audit
  More tokens: ./dev token customer|restaurant|driver|admin <id> [home cell]

  Ctrl-C to stop.
MSG
wait "${PIDS[0]}"
