#!/usr/bin/env bash
# Cell operations under load: a region move, a drain and a restart, each done while order
# flows run through the router and simulated drivers deliver them (issue 24, "Numbers").
#
# A router in front of two demo cells, Berlin (cell 1) and Munich (cell 2), as `./dev city`
# has them (plain HTTP here). `drivesim` runs DRIVERS drivers around Berlin's centre, on
# Berlin's QUIC gateway, accepting every offer and delivering SPEEDUP times faster than real
# time; they follow handovers through the router. `loadgen orders` runs RATE order flows/s
# through the router around Berlin's centre (search, menu, quote, place with an
# Idempotency-Key, then the restaurant's accept, preparing, ready). During the load, at
# seconds after it began:
#   AT_MOVE     Berlin's centre region moves to Munich   (`router regions move`)
#   AT_DRAIN    Berlin drains into Munich                (`router cells drain 1 --to 2`)
#   AT_RESTART  Munich, by then serving all of Berlin's regions, restarts: SIGTERM, wait for
#               exit, start again on the same data dir and ports, until its READY line.
# TRACKERS tracking WebSockets (through the router, on orders placed just before the restart,
# which their restaurants never accept so they stay live) time close → snapshot across it.
# After the load, waits up to SETTLE_SECS for Berlin to reach `drained` and for every cell's
# active orders to reach 0. Berlin's `[drain] unassigned_deadline_ms` is DRAIN_DEADLINE_MS:
# scaled like the deliveries (the cell's default is 10 min; at ×60 a delivery takes seconds).
#
# Prints (and writes to $OUT/summary.txt, with every report as JSON beside it): client errors
# per op and status, split into retry-safe requests (GETs and the keyed place) and the others;
# each operation's duration; drivers' reconnect time p50/p99/max after the restart (drivesim's
# --status-json); the tracker gap p99 (close 1012 → snapshot); orders still active at the end.
# Needs release builds:
#   cargo build --release -p cell -p router -p loadgen -p driver-client \
#     --bin cell --bin router --bin loadgen --bin drivesim
# Usage: loadgen/bench/ops.sh   (QUICK=1 for a ~2-minute run; env: SECS RATE DRIVERS SPEEDUP
#   AT_MOVE AT_DRAIN AT_RESTART DRAIN_DEADLINE_MS SETTLE_SECS TRACKERS BERLIN_RESTAURANTS
#   MUNICH_RESTAURANTS OUT BIN_DIR; KEEP_DATA=1 keeps the stores, about 1 GB, removed otherwise)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${QUICK:-0}" = 1 ]; then
  D=(100 15 30 60 20000 120)
else
  D=(480 60 120 300 60000 300)
fi
SECS=${SECS:-${D[0]}}; AT_MOVE=${AT_MOVE:-${D[1]}}; AT_DRAIN=${AT_DRAIN:-${D[2]}}
AT_RESTART=${AT_RESTART:-${D[3]}}; DRAIN_DEADLINE_MS=${DRAIN_DEADLINE_MS:-${D[4]}}
SETTLE_SECS=${SETTLE_SECS:-${D[5]}}
RATE=${RATE:-40}; DRIVERS=${DRIVERS:-500}; SPEEDUP=${SPEEDUP:-60}; TRACKERS=${TRACKERS:-5}
BERLIN_RESTAURANTS=${BERLIN_RESTAURANTS:-12000}; MUNICH_RESTAURANTS=${MUNICH_RESTAURANTS:-2000}
OUT=${OUT:-target/bench/ops-$(date -u +%Y%m%dT%H%M%SZ)}
. loadgen/bench/lib.sh
# lib.sh's trap, made safe under `set -e` (killing an already dead pid must not set the status).
trap 'kill ${PIDS[@]+"${PIDS[@]}"} 2>/dev/null || true; wait 2>/dev/null || true' EXIT
SIM=${SIM:-$BIN_DIR/drivesim}
mkdir -p "$OUT"
BERLIN=52.5200,13.4050; MUNICH=48.1372,11.5755
now_ms() { date +%s%3N; }
log() { printf '[%6.1fs] %s\n' "$(( $(now_ms) - T0 ))e-3" "$*"; }
T0=$(now_ms)

# --- the city -----------------------------------------------------------------------------
cell_toml() { # name city centre restaurants extra
  printf '[cell]\nname = "%s"\n[demo]\ncity_name = "%s"\ncenter_lat = %s\ncenter_lng = %s\nrestaurants = %s\n%b' \
    "$1" "$2" "${3%,*}" "${3#*,}" "$4" "${5:-}" >"$OUT/$1.toml"
}
cell_toml berlin Berlin "$BERLIN" "$BERLIN_RESTAURANTS" \
  "[drain]\nunassigned_deadline_ms = $DRAIN_DEADLINE_MS\ntick_ms = 1000\n"
cell_toml munich Munich "$MUNICH" "$MUNICH_RESTAURANTS"
start_cell() { # name id http quic (addresses; 127.0.0.1:0 for any)
  "$CELL" run --demo --config "$OUT/$1.toml" --cell-id "$2" --listen "$3" --quic-listen "$4" \
    --data-dir "$OUT/$1" >>"$OUT/$1.ready" 2>>"$OUT/$1.log" &
  PIDS+=("$!")
}
printf '[limits]\nper_ip_rps = 10000000\nper_ip_burst = 10000000\nper_token_rps = 10000000\nper_token_burst = 10000000\n' >"$OUT/router.toml"
start_cell berlin 1 127.0.0.1:0 127.0.0.1:0; BERLIN_PID=$!
start_cell munich 2 127.0.0.1:0 127.0.0.1:0; MUNICH_PID=$!
"$ROUTER" run --demo --config "$OUT/router.toml" --listen 127.0.0.1:0 --data-dir "$OUT/router" \
  >"$OUT/router.ready" 2>"$OUT/router.log" &
ROUTER_PID=$!; PIDS+=("$ROUTER_PID")
for f in berlin munich router; do wait_ready "$OUT/$f.ready"; done
B_HTTP=$(field "$OUT/berlin.ready" http); M_HTTP=$(field "$OUT/munich.ready" http)
M_QUIC=$(field "$OUT/munich.ready" quic)
R_HTTP=$(field "$OUT/router.ready" http)
export ROUTER_URL="http://$R_HTTP"
"$ROUTER" cells add "$B_HTTP" >/dev/null
"$ROUTER" cells add "$M_HTTP" >/dev/null
log "up: router $R_HTTP, berlin $B_HTTP (cell 1), munich $M_HTTP (cell 2); reports in $OUT"

# Every second: the router's view of the cells (state, active orders, drain progress).
( while :; do
    printf '{"t":%s,"cells":%s}\n' "$(now_ms)" "$("$ROUTER" cells list 2>/dev/null | tr -d '\n' || echo null)"
    sleep 1
  done ) >"$OUT/cells.jsonl" &
PIDS+=("$!")

# --- the load -----------------------------------------------------------------------------
"$SIM" --http "http://$B_HTTP" --quic "$(field "$OUT/berlin.ready" quic)" \
  --ca "$(field "$OUT/berlin.ready" quic_ca)" --router "http://$R_HTTP" --jwt-secret "$SECRET" \
  --drivers "$DRIVERS" --first-driver-id 900000 --lat "${BERLIN%,*}" --lng "${BERLIN#*,}" \
  --radius-km 5 --speedup "$SPEEDUP" --status-every 5 --status-json "$OUT/drivesim.json" \
  >"$OUT/drivesim.log" 2>&1 &
SIM_PID=$!; PIDS+=("$SIM_PID")
sleep 3
# Longer than the router's hold (10 s): a held request is answered, not abandoned.
"$L" orders --target "http://$R_HTTP" --jwt-secret "$SECRET" --rate "$RATE" --duration "${SECS}s" \
  --ramp-up 3s --timeout 15s --center "$BERLIN" --spread-km 5 --target-pid "$ROUTER_PID" \
  --progress off --report-json "$OUT/orders.json" >"$OUT/orders.txt" 2>&1 &
LG_PID=$!; PIDS+=("$LG_PID")
L0=$(now_ms)
log "load: $RATE order flows/s for ${SECS}s, $DRIVERS drivers at ×$SPEEDUP"
at() { local wait=$(( L0 + $1 * 1000 - $(now_ms) )); [ "$wait" -le 0 ] || sleep "$((wait / 1000)).$(printf '%03d' $((wait % 1000)))"; }
OPS="$OUT/ops.env"; : >"$OPS"
status_line() { tail -1 "$OUT/drivesim.log" | cut -c1-160; }

# --- 1. region move -----------------------------------------------------------------------
at "$AT_MOVE"
REGION=$("$ROUTER" regions at -- "${BERLIN%,*}" "${BERLIN#*,}")
log "move: region $REGION (Berlin's centre) → cell 2"
t=$(now_ms)
"$ROUTER" regions move "$REGION" --to 2 >"$OUT/move.json"
echo "MOVE_MS=$(( $(now_ms) - t ))" >>"$OPS"
log "move done in $(( $(now_ms) - t )) ms: $(head -c 300 "$OUT/move.json")"
log "drivers: $(status_line)"

# --- 2. drain -----------------------------------------------------------------------------
at "$AT_DRAIN"
log "drain: cell 1 → cell 2"
t=$(now_ms)
"$ROUTER" cells drain 1 --to 2 >"$OUT/drain.json"
echo "DRAIN_START=$t" >>"$OPS"; echo "DRAIN_CALL_MS=$(( $(now_ms) - t ))" >>"$OPS"
log "drain call returned in $(( $(now_ms) - t )) ms (regions moved); waiting for 'drained' in the background"

# --- 3. restart ---------------------------------------------------------------------------
TRACK_STOP="$OUT/trackers.stop"
at $(( AT_RESTART - 8 ))
if [ "$TRACKERS" -gt 0 ]; then
  TOKEN=$("$ROUTER" token --role customer --sub 990001)
  python3 loadgen/bench/ops_trackers.py "$R_HTTP" "$TOKEN" "$BERLIN" "$TRACKERS" "$TRACK_STOP" \
    "$OUT/trackers.json" >"$OUT/trackers.txt" 2>&1 &
  TRK_PID=$!; PIDS+=("$TRK_PID")
fi
at "$AT_RESTART"
log "restart: SIGTERM munich (pid $MUNICH_PID)"
t=$(now_ms)
echo "RESTART_START=$t" >>"$OPS"
kill -TERM "$MUNICH_PID"
wait "$MUNICH_PID" 2>/dev/null || true
t_exit=$(now_ms)
echo "RESTART_STOP_MS=$(( t_exit - t ))" >>"$OPS"
: >"$OUT/munich.ready"
echo "--- restart ---" >>"$OUT/munich.log"
start_cell munich 2 "$M_HTTP" "$M_QUIC"; MUNICH_PID=$!
wait_ready "$OUT/munich.ready"
t_ready=$(now_ms)
echo "RESTART_START_MS=$(( t_ready - t_exit ))" >>"$OPS"; echo "RESTART_MS=$(( t_ready - t ))" >>"$OPS"
echo "RESTART_READY=$t_ready" >>"$OPS"
log "munich stopped in $(( t_exit - t )) ms, ready again $(( t_ready - t_exit )) ms later (pid $MUNICH_PID)"
sleep 10
touch "$TRACK_STOP"
log "drivers: $(status_line)"

# --- the end ------------------------------------------------------------------------------
wait "$LG_PID" || true
log "load done; waiting up to ${SETTLE_SECS}s for berlin to drain and active orders to reach 0"
# Settled: berlin drained and no active order left, or the count unchanged for 30 s (what
# is left then is stranded).
active() {
  tail -1 "$OUT/cells.jsonl" | python3 -c '
import json, sys
c = json.loads(sys.stdin.read())["cells"]["cells"]
drained = any(x["id"] == 1 and x["state"] == "drained" for x in c)
print(sum(x.get("active_orders", 0) for x in c) if drained else "draining")' 2>/dev/null || echo unknown
}
end=$(( $(now_ms) + SETTLE_SECS * 1000 )); last=; since=$(now_ms)
while [ "$(now_ms)" -lt "$end" ]; do
  a=$(active)
  [ "$a" = 0 ] && break
  if [ "$a" != "$last" ]; then last=$a; since=$(now_ms); log "active orders: $a"; fi
  case "$a" in ''|*[!0-9]*) ;; *) [ $(( $(now_ms) - since )) -ge 30000 ] && break ;; esac
  sleep 2
done
sleep 1
echo "END=$(now_ms)" >>"$OPS"
curl -s "http://$B_HTTP/metrics" >"$OUT/berlin.metrics" || true
curl -s "http://$M_HTTP/metrics" >"$OUT/munich.metrics" || true
kill -TERM "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true
[ -n "${TRK_PID:-}" ] && { wait "$TRK_PID" 2>/dev/null || true; }
"$ROUTER" cells list >"$OUT/cells-end.json"

{
  echo "ops.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname): $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "load at the end: $(uptime | sed 's/.*load average/load average/')"
  echo "RATE=$RATE SECS=$SECS DRIVERS=$DRIVERS SPEEDUP=$SPEEDUP AT_MOVE=$AT_MOVE AT_DRAIN=$AT_DRAIN AT_RESTART=$AT_RESTART DRAIN_DEADLINE_MS=$DRAIN_DEADLINE_MS TRACKERS=$TRACKERS BERLIN_RESTAURANTS=$BERLIN_RESTAURANTS"
  python3 loadgen/bench/ops_summary.py "$OUT"
} | tee "$OUT/summary.txt"
# The stores take about a gigabyte; the reports stay.
kill ${PIDS[@]+"${PIDS[@]}"} 2>/dev/null || true; wait 2>/dev/null || true
[ -n "${KEEP_DATA:-}" ] || rm -rf "$OUT/berlin" "$OUT/munich" "$OUT/router"
exit 0
