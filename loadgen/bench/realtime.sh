#!/usr/bin/env bash
# Real time under load (issues 5 and 18): one release cell absorbs RATE GPS pings/s from 2,000
# QUIC drivers while 200 customers track live orders over WebSocket; prints ping → push
# latency, ping loss and CPU per process. Run from the repository root after
# `cargo build --release -p cell -p loadgen`.
#
#   loadgen/bench/realtime.sh [OUT_DIR]
#   env: RATE (100000), DURATION (60, seconds), RUNS (3), CELL_CPUS (0), LOADGEN_CPUS (1),
#        CONFIG (cell TOML), BIN_DIR (target/release; see lib.sh)
#        FIND_MAX=1: instead of runs at RATE, `loadgen pings --find-max` from RATE upwards
#        (STEP factor 1.25, STEP_DURATION 20 s, WARM_UP 5 s, MAX_RATE unset) with the
#        trackers watching, RUNS times.
#
# Every run starts a fresh cell. At the end a table gives min / median / max over the runs of
# the loss, the ping → push p99 and the CPU µs per ping of the cell (per ping it accepted) and
# of the load generator (per ping it sent); with FIND_MAX=1 of the last rate that held.
#
# The cell and the load generator are pinned to different cores (taskset) so that on a 2-core
# box each gets one and the measurement is the cell's, not the scheduler's. The load
# generator spreads its drivers over 32 UDP sockets (--share-sockets), as a NAT or a test rig
# would; the cell still sees 2,000 connections and handshakes.
set -euo pipefail
OUT=${1:-target/bench/realtime-$(date -u +%Y%m%dT%H%M%S)}
RATE=${RATE:-100000}; DURATION=${DURATION:-60}; RUNS=${RUNS:-3}; FIND_MAX=${FIND_MAX:-0}
CELL_CPUS=${CELL_CPUS:-0}; LOADGEN_CPUS=${LOADGEN_CPUS:-1}
STEP=${STEP:-1.25}; STEP_DURATION=${STEP_DURATION:-20}; WARM_UP=${WARM_UP:-5}
. "$(dirname "$0")/lib.sh"   # CELL, L, PIDS, field, wait_ready
for b in "$CELL" "$L"; do [ -x "$b" ] || { echo "missing $b: cargo build --release -p cell -p loadgen"; exit 1; }; done
[ "$FIND_MAX" = 1 ] || [ "$DURATION" -ge 40 ] || { echo "DURATION must be at least 40 (tracking runs DURATION - 30 s)"; exit 1; }
mkdir -p "$OUT"; DATA=""
# Processes of runs already over are gone: kill's failure must not end the trap (set -e).
trap 'kill ${PIDS[@]+"${PIDS[@]}"} 2>/dev/null || true; wait 2>/dev/null || true; [ -z "$DATA" ] || rm -rf "$DATA"' EXIT
note() { echo "$1 $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/info"; }
CFG=(); [ -n "${CONFIG:-}" ] && CFG=(--config "$CONFIG")

# A fresh cell pinned to CELL_CPUS, its files in $1; sets CELLPID, H and A (loadgen flags).
start_cell() {
  DATA=$(mktemp -d)
  RUST_LOG=warn taskset -c "$CELL_CPUS" "$CELL" run ${CFG[@]+"${CFG[@]}"} --demo --listen 127.0.0.1:0 \
    --quic-listen 127.0.0.1:0 --data-dir "$DATA" >"$1/cell.out" 2>"$1/cell.err" &
  CELLPID=$!; PIDS+=("$CELLPID")
  wait_ready "$1/cell.out"
  H=$(field "$1/cell.out" http); local q ca; q=$(field "$1/cell.out" quic); ca=$(field "$1/cell.out" quic_ca)
  echo "cell: $(field "$1/cell.out" quic_threads) gateway thread(s) on CPUs $CELL_CPUS"
  A=(--target "http://$H" --quic "$q" --quic-ca "$ca" --token-from-dev --target-pid "$CELLPID")
}
stop_cell() { kill "$CELLPID" 2>/dev/null || true; wait "$CELLPID" 2>/dev/null || true; rm -rf "$DATA"; DATA=""; }

# One measurement at RATE into $1 (pings.json, track.json and their text output).
measure() {
  local dir=$1
  # Kernel UDP receive-buffer drops (whole machine), sampled every second: shows *when* pings
  # were lost (the pings report has the totals).
  ( t0=$(date +%s); while sleep 1; do
      echo "$(( $(date +%s) - t0 )) $(awk '/^Udp:/{n++; if (n == 2) print $6}' /proc/net/snmp)"
    done >"$dir/udp_rcvbuf_errors.txt" ) &
  local sampler=$!; PIDS+=("$sampler")
  start_cell "$dir"
  echo "pings: 2000 drivers, $RATE/s for ${DURATION}s (10 s ramp-up); tracking starts after 20 s"
  taskset -c "$LOADGEN_CPUS" "$L" pings "${A[@]}" --drivers 2000 --rate "$RATE" --duration "${DURATION}s" \
    --ramp-up 10s --share-sockets 32 --progress lines --report-json "$dir/pings.json" >"$dir/pings.out" 2>&1 &
  local pings=$!; PIDS+=("$pings")
  sleep 20
  note "track start"
  taskset -c "$LOADGEN_CPUS" "$L" track "${A[@]}" ${TRACK_ARGS:-} --trackers 200 --duration "$((DURATION - 30))s" --settle 5s \
    --progress lines --report-json "$dir/track.json" 2>&1 | tee "$dir/track.out" || true
  note "track end"
  wait "$pings" || true
  curl -s "http://$H/metrics" >"$dir/metrics.txt"
  kill "$sampler" 2>/dev/null || true
  stop_cell
  echo "--- $dir"
  grep -E "^ping → push|not in the above|^CPU" "$dir/track.out" | sed 's/^/track: /' || true
  grep -E "^sent |^loss:|^CPU" "$dir/pings.out" | sed 's/^/pings: /' || true
  echo "kernel receive-buffer drops by second since start (tracking set-up begins at ~20 s):"
  awk 'NR > 1 && $2 > p { printf "  %ss: %d\n", $1, $2 - p } { p = $2 }' "$dir/udp_rcvbuf_errors.txt" | head -20
}

# One `--find-max` search into $1, with 200 trackers watching (so each step has a p99).
find_max() {
  local dir=$1
  start_cell "$dir"
  taskset -c "$LOADGEN_CPUS" "$L" track "${A[@]}" ${TRACK_ARGS:-} --trackers 200 --duration 3600s --settle 5s \
    --progress off >"$dir/track.out" 2>&1 &
  local track=$!; PIDS+=("$track")
  sleep "${TRACK_SETUP:-15}"
  note "find-max start"
  local cap=(); [ -n "${MAX_RATE:-}" ] && cap=(--max-rate "$MAX_RATE")
  taskset -c "$LOADGEN_CPUS" "$L" pings "${A[@]}" --drivers 2000 --share-sockets 32 --find-max --rate "$RATE" \
    --step "$STEP" --step-duration "${STEP_DURATION}s" --warm-up "${WARM_UP}s" ${cap[@]+"${cap[@]}"} \
    --report-json "$dir/find_max.json" 2>&1 | tee "$dir/find_max.out" || true
  note "find-max end"
  kill "$track" 2>/dev/null || true; wait "$track" 2>/dev/null || true
  stop_cell
}

note start
for i in $(seq 1 "$RUNS"); do
  echo "=== run $i of $RUNS"
  mkdir -p "$OUT/run$i"
  if [ "$FIND_MAX" = 1 ]; then find_max "$OUT/run$i"; else measure "$OUT/run$i"; fi
done
note end

echo
echo "=== summary over $RUNS run(s) ($OUT) ==="
python3 - "$OUT" "$RUNS" "$FIND_MAX" <<'PY'
import json, os, statistics, sys
out, runs, find_max = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
def load(i, name):
    p = os.path.join(out, f"run{i}", name)
    return json.load(open(p)) if os.path.exists(p) else None
def per(cores, secs, n):
    return None if cores is None or not n else cores * secs * 1e6 / n
rows = {}
def add(k, v):
    rows.setdefault(k, []).append(v)
for i in range(1, runs + 1):
    if find_max:
        r = load(i, "find_max.json")
        if not r:
            continue
        add("last rate that held, pings/s", r["last_held_rate"])
        held = [s for s in r["steps"] if s["held"]] or r["steps"][:1]
        s = held[-1]
        add("loss % at that rate", s["loss_pct"])
        add("ping → push p99 ms at that rate", s["p99_ms"])
        add("cell µs per accepted ping at that rate", s["cell_us_per_ping"])
        add("loadgen µs per sent ping at that rate", s["loadgen_us_per_ping"])
    else:
        p, t = load(i, "pings.json"), load(i, "track.json")
        if p:
            add("loss % (whole send phase)", p["ops"][0].get("loss_pct"))
            add("cell µs per accepted ping", per(p["cpu"].get("target_cores"), p["send_s"], p["server"]["accepted"]))
            add("loadgen µs per sent ping", per(p["cpu"]["loadgen_cores"], p["send_s"], p["sent"]))
        if t:
            add("ping → push p99 ms (steady)", t["ping_to_push_ms"]["p99"])
def fmt(v):
    return "-" if v is None else f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
print(f"{'':40} {'min':>10} {'median':>10} {'max':>10} {'runs':>5}")
for k, vs in rows.items():
    vs = [v for v in vs if v is not None]
    if not vs:
        print(f"{k:40} {'-':>10} {'-':>10} {'-':>10} {0:>5}")
        continue
    print(f"{k:40} {fmt(min(vs)):>10} {fmt(statistics.median(vs)):>10} {fmt(max(vs)):>10} {len(vs):>5}")
PY
