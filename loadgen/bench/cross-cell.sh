#!/usr/bin/env bash
# Cross-cell search: the p99 a router adds by fanning a search out to two cells, against the
# same search answered by one cell. Two demo cells own two neighbouring regions (west of
# Berlin); every search is centred within SPREAD_KM of their shared edge, RADIUS wide, so it
# touches both. Router "two" maps both cells: each search asks both and merges. Router
# "one" maps only the west cell: the same searches are answered by it alone (the east
# region is unowned there), doing the west cell's share of the same work. The two routers
# alternate ROUNDS times at RATE searches/s; the answer is the ratio p99(two) / p99(one).
# Needs release builds:
#   cargo build --release -p cell -p router -p loadgen --bin cell --bin router --bin loadgen
# Usage: loadgen/bench/cross-cell.sh   (env: RATE=1000 SECS=20 ROUNDS=3 RESTAURANTS=3000
#   RADIUS=3km SPREAD_KM=0.5 OUT=dir BIN_DIR=target/release)
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE=${RATE:-1000}; SECS=${SECS:-20}; ROUNDS=${ROUNDS:-3}; RESTAURANTS=${RESTAURANTS:-3000}
RADIUS=${RADIUS:-3km}; SPREAD_KM=${SPREAD_KM:-0.5}
OUT=${OUT:-$(mktemp -d /tmp/cross-cell.XXXX)}
. loadgen/bench/lib.sh
mkdir -p "$OUT"

# The centres of H3 regions 851f1d4bfffffff (west cell) and 851f1897fffffff (east cell) and
# the midpoint of their shared edge, as the `cross_cell` integration test derives them
# (it prints them: `cargo test -p itest --test cross_cell -- --nocapture`).
WEST=52.535243,13.283925; EAST=52.519886,13.036336; EDGE=52.527565,13.160130
region() { "$ROUTER" regions at -- "${1%,*}" "${1#*,}"; }
RW=$(region "$WEST"); RE=$(region "$EAST")
[ "$RW" != "$RE" ] || { echo "the two centres fall in one region"; exit 1; }

# Each cell's restaurants within 7 km of its region's centre: inside the region (its
# inradius is ~8.4 km there), reaching to ~1.4 km from the shared edge.
start_cell() { # name id centre
  printf '[cell]\nname = "%s"\n[demo]\ncity_name = "%s"\ncenter_lat = %s\ncenter_lng = %s\nradius_km = 7.0\nrestaurants = %s\n' \
    "$1" "$1" "${3%,*}" "${3#*,}" "$RESTAURANTS" >"$OUT/$1.toml"
  "$CELL" run --demo --config "$OUT/$1.toml" --cell-id "$2" --listen 127.0.0.1:0 --quic-listen 127.0.0.1:0 \
    --data-dir "$OUT/$1" >"$OUT/$1.ready" 2>"$OUT/$1.log" &
  PIDS+=("$!")
}
start_router() { # name
  "$ROUTER" run --demo --config "$OUT/router.toml" --listen 127.0.0.1:0 --data-dir "$OUT/router-$1" \
    >"$OUT/router-$1.ready" 2>"$OUT/router-$1.log" &
  PIDS+=("$!")
}
# Load from one IP and a few tokens: limits high rather than off, so the limiter still runs.
printf '[limits]\nper_ip_rps = 10000000\nper_ip_burst = 10000000\nper_token_rps = 10000000\nper_token_burst = 10000000\n' >"$OUT/router.toml"
start_cell west 1 "$WEST"; start_cell east 2 "$EAST"
start_router two; PID_TWO=${PIDS[-1]}
start_router one; PID_ONE=${PIDS[-1]}
for f in west east router-two router-one; do wait_ready "$OUT/$f.ready"; done
W_HTTP=$(field "$OUT/west.ready" http); E_HTTP=$(field "$OUT/east.ready" http)
R_TWO=$(field "$OUT/router-two.ready" http); R_ONE=$(field "$OUT/router-one.ready" http)
"$ROUTER" cells add "$W_HTTP" --region "$RW" --router "http://$R_TWO" >/dev/null
"$ROUTER" cells add "$E_HTTP" --region "$RE" --router "http://$R_TWO" >/dev/null
"$ROUTER" cells add "$W_HTTP" --region "$RW" --router "http://$R_ONE" >/dev/null
echo "west $W_HTTP ($RW), east $E_HTTP ($RE); router two $R_TWO (both), one $R_ONE (west only)"
echo "search at $RATE/s within ${SPREAD_KM} km of $EDGE, radius $RADIUS, ${SECS}s, $ROUNDS rounds each; reports in $OUT"

for i in $(seq 1 "$ROUNDS"); do
  for via in two one; do
    if [ "$via" = two ]; then T="http://$R_TWO"; PID=$PID_TWO; else T="http://$R_ONE"; PID=$PID_ONE; fi
    echo "== round $i: $via"
    "$L" search --target "$T" --jwt-secret "$SECRET" --rate "$RATE" --duration "${SECS}s" --ramp-up 3s \
      --center "$EDGE" --spread-km "$SPREAD_KM" --radius "$RADIUS" --target-pid "$PID" --progress off \
      --report-json "$OUT/$via-$i.json" >"$OUT/$via-$i.txt" 2>&1 || true
    tail -3 "$OUT/$via-$i.txt"
  done
done
# What the answers held: a fan-out answer names both cells' restaurants, and says partial
# when one was late.
TOKEN=$("$ROUTER" token --role customer --sub 1)
for via in two one; do
  if [ "$via" = two ]; then R=$R_TWO; else R=$R_ONE; fi
  curl -s -H "Authorization: Bearer $TOKEN" \
    "http://$R/api/v1/restaurants?lat=${EDGE%,*}&lng=${EDGE#*,}&radius=$RADIUS" >"$OUT/sample-$via.json"
done
grep -h 'router_fanout_missing_total' <(curl -s "http://$R_TWO/metrics") || true

python3 - "$OUT" "$ROUNDS" "$RATE" <<'PY'
import json, sys, statistics, os
out, rounds, rate = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows, ratios = [], []
for i in range(1, rounds + 1):
    r = {}
    for via in ("two", "one"):
        d = json.load(open(os.path.join(out, f"{via}-{i}.json")))
        op = d["ops"][0]
        r[via] = op
        cpu = d.get("cpu", {})
        rows.append((i, via, op["rate_ok_per_s"], op["errors"], op["latency_ms"]["p50"], op["latency_ms"]["p99"], op["latency_ms"]["p999"], cpu))
    ratios.append(r["two"]["latency_ms"]["p99"] / r["one"]["latency_ms"]["p99"])
for via in ("two", "one"):
    s = json.load(open(os.path.join(out, f"sample-{via}.json")))
    print(f"sample answer via {via}: {len(s.get('restaurants', []))} restaurants of {s.get('total')}, partial={s.get('partial')}")
print()
print(f"search at {rate}/s centred on a cell border: fanned out to two cells vs answered by one (alternating)")
print(f"{'round':>5} {'cells':>5} {'ok/s':>8} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8}  router cpu")
for i, via, ok, err, p50, p99, p999, cpu in rows:
    print(f"{i:>5} {via:>5} {ok:>8.0f} {err:>6} {p50:>7.2f} {p99:>7.2f} {p999:>8.2f}  {json.dumps(cpu)}")
print(f"p99 ratio two/one per round: {', '.join(f'{x:.2f}' for x in ratios)}; "
      f"min {min(ratios):.2f}, median {statistics.median(ratios):.2f}, max {max(ratios):.2f}")
PY
