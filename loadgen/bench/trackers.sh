#!/usr/bin/env bash
# 100K trackers per cell (issue 18 part 4): one release cell with ROUTERS routers in front,
# TRACKERS tracking WebSockets opened through the routers on ORDERS live orders and held for
# DURATION seconds, optionally with `loadgen pings` at RATE alongside. Prints the cell's and the
# routers' RSS growth per connection (measured with all trackers open and idle), connections
# dropped and ping → push p99. Needs release builds:
#   cargo build --release -p cell -p router -p loadgen --bin cell --bin router --bin loadgen
# Usage: loadgen/bench/trackers.sh   (env: TRACKERS=100000 DURATION=300 RATE=0 ORDERS=20
#        SOURCES=8 PING_INTERVAL=1s OUT=dir IDLE=0 VIA=router|direct ROUTERS=auto
#        CELL_EXTRA=toml BIN_DIR=target/release)
# IDLE=1 leaves the orders unaccepted (no pushes after the snapshot); VIA=direct connects the
# trackers to the cell itself, for comparison.
#
# Ports: one source address reaches one destination through at most ~28K ephemeral ports
# (32768-60999), so the trackers connect from SOURCES loopback addresses 127.0.0.2, .3, …
# and router r reaches the cell from as many others (127.0.r.1, …: `[upstream]
# source_addrs`).
#
# Descriptors: the cell and the load generator need one per tracker, a router two. The script
# raises its own limit as far as it may (to 1048576 with CAP_SYS_RESOURCE, else to the hard
# limit) and the processes inherit it. ROUTERS=auto starts as many routers as that limit
# needs (one where it is 1048576); if even the cell's or the load generator's limit is below
# TRACKERS, the run is cut to what fits and says so.
set -euo pipefail
cd "$(dirname "$0")/../.."
TRACKERS=${TRACKERS:-100000}; DURATION=${DURATION:-300}; RATE=${RATE:-0}; ORDERS=${ORDERS:-20}
SOURCES=${SOURCES:-8}; PING_INTERVAL=${PING_INTERVAL:-1s}; IDLE=${IDLE:-0}; VIA=${VIA:-router}
ROUTERS=${ROUTERS:-auto}
OUT=${OUT:-$(mktemp -d /tmp/trackers.XXXX)}
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
LIMIT=$(ulimit -n)
mkdir -p "$OUT"
note() { echo "$*" | tee -a "$OUT/info"; }
note "descriptor limit $LIMIT (hard $(ulimit -Hn)); reports in $OUT"
. loadgen/bench/lib.sh
for b in "$CELL" "$ROUTER" "$L"; do [ -x "$b" ] || { echo "missing $b (see the header)"; exit 1; }; done

# Descriptors each process keeps besides the trackers' (listeners, the store, QUIC and HTTP
# pools, epoll): a generous allowance.
SPARE=300
fits=$((LIMIT - SPARE))
if [ "$TRACKERS" -gt "$fits" ]; then
  note "CUT: descriptor limit $LIMIT lets one process hold about $fits trackers (the cell and the" \
    "load generator need one per tracker; raising the hard limit needs CAP_SYS_RESOURCE);" \
    "running $fits instead of $TRACKERS"
  TRACKERS=$fits
fi
if [ "$ROUTERS" = auto ]; then ROUTERS=$(( (2 * TRACKERS + fits - 1) / fits )); fi
[ "$VIA" = direct ] && ROUTERS=1
note "trackers $TRACKERS via $VIA, routers $ROUTERS, orders $ORDERS, duration ${DURATION}s, pings ${RATE}/s"

# Both listeners admit more than the 100,000 connections they default to (trackers plus the
# health checks, the load generator's REST calls, and the router's pool).
CELL_TOML="$OUT/cell.toml"
printf '[http.edge]\nmax_connections = 250000\n%s\n' "${CELL_EXTRA:-}" >"$CELL_TOML"
upstream() { for i in $(seq 1 "$SOURCES"); do printf '"127.0.%d.%d",' "$1" "$i"; done; }
router_extra() { local u; u=$(upstream "$1"); printf '[http.edge]\nmax_connections = 250000\n[upstream]\nsource_addrs = [%s]\n' "${u%,}"; }
ROUTER_TOML_EXTRA=$(router_extra 1)
export CELL_TOML ROUTER_TOML_EXTRA
start_cell_and_router
RSS=(--rss "cell=$CELLPID" --rss "router1=$ROUTERPID"); VIAS=(--ws-via "http://$ROUTER_HTTP")
note "cell $CELL_HTTP (pid $CELLPID, QUIC $QUIC), router1 $ROUTER_HTTP (pid $ROUTERPID)"
# More routers in front of the same cell, each with its own map naming it.
for r in $(seq 2 "$ROUTERS"); do
  sed '/^\[upstream\]/,$d' "$OUT/router.toml" >"$OUT/router$r.toml"
  router_extra "$r" | sed '1,2d' >>"$OUT/router$r.toml"
  "$ROUTER" run --demo --config "$OUT/router$r.toml" --listen 127.0.0.1:0 --data-dir "$OUT/router$r" \
    >"$OUT/router$r.ready" 2>"$OUT/router$r.log" &
  pid=$!; PIDS+=("$pid")
  wait_ready "$OUT/router$r.ready"
  http=$(field "$OUT/router$r.ready" http)
  "$ROUTER" cells add "$CELL_HTTP" --router "http://$http" >/dev/null
  RSS+=(--rss "router$r=$pid"); VIAS+=(--ws-via "http://$http")
  note "router$r $http (pid $pid)"
done

if [ "$RATE" != 0 ]; then
  note "pings: $RATE/s from 2000 drivers for ${DURATION}s alongside"
  "$L" pings --target "http://$CELL_HTTP" --quic "$QUIC" --quic-ca "$CA" --jwt-secret "$SECRET" \
    --drivers 2000 --rate "$RATE" --duration "$((DURATION + 120))s" --ramp-up 10s --share-sockets 32 \
    --progress off --report-json "$OUT/pings.json" >"$OUT/pings.out" 2>&1 &
  PIDS+=("$!")
fi

# The kernel's TCP memory (socket buffers: not in any process's RSS) and the load, every 5 s.
( while sleep 5; do echo "$(awk '/^TCP:/{print $3, $NF}' /proc/net/sockstat) $(cut -d' ' -f1-3 /proc/loadavg)"; done >"$OUT/sockstat.txt" ) &
PIDS+=("$!")
last=$((SOURCES + 1))
idle=(); [ "$IDLE" = 1 ] && idle=(--idle)
if [ "$VIA" = direct ]; then RSS=(--rss "cell=$CELLPID"); VIAS=(--ws-via "http://$CELL_HTTP"); fi
note "start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
"$L" trackers --target "http://$ROUTER_HTTP" --quic "$QUIC" --quic-ca "$CA" --jwt-secret "$SECRET" \
  --connections "$TRACKERS" --orders "$ORDERS" --sources "127.0.0.2-127.0.0.$last" "${VIAS[@]}" \
  --duration "${DURATION}s" --ping-interval "$PING_INTERVAL" ${idle[@]+"${idle[@]}"} \
  "${RSS[@]}" --report-json "$OUT/trackers.json" \
  2>&1 | tee "$OUT/trackers.out" || true
note "end $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "=== summary ($OUT) ==="
cat "$OUT/info"
grep -E "^trackers against|^held|^ping → push|^rss|^dropped:|^open failure" "$OUT/trackers.out" || true
python3 - "$OUT/trackers.json" <<'EOF' || true
import json, sys
r = json.load(open(sys.argv[1]))
n = max(r["opened"], 1)
routers = [m for m in r["rss"] if m["name"].startswith("router")]
kib = lambda ms, at: sum(m[at] - m["before_bytes"] for m in ms) / n / 1024
for m in r["rss"]:
    if not m["name"].startswith("router"):
        print(f'{m["name"]} RSS per connection: {kib([m], "open_bytes"):.2f} KiB open and idle, {kib([m], "end_bytes"):.2f} KiB at the end of the hold')
if routers:
    # Every tracker passes through exactly one router.
    print(f'router RSS per spliced connection: {kib(routers, "open_bytes"):.2f} KiB open and idle, {kib(routers, "end_bytes"):.2f} KiB at the end of the hold ({len(routers)} router(s))')
print(f'connections opened {r["opened"]} of {r["requested"]}, dropped {r["dropped"]}, push p99 {r["ping_to_push_ms"]["p99"]:.1f} ms')
EOF
if [ "$RATE" != 0 ]; then grep -E "^sent |^loss:" "$OUT/pings.out" | sed 's/^/pings: /' || true; fi
sort -n -k2 "$OUT/sockstat.txt" | tail -1 | awk '{printf "kernel TCP memory at most %.0f MiB (%d sockets in use; socket buffers, in no process RSS)\n", $2 * 4096 / 1048576, $1}'
awk '{print $3}' "$OUT/sockstat.txt" | sort -n | awk '{a[NR]=$1} END {if (NR) printf "load average (1 min) during the run: min %s median %s max %s\n", a[1], a[int((NR+1)/2)], a[NR]}'
