#!/usr/bin/env bash
# Real time under load (issue 5): one release cell absorbs RATE GPS pings/s from 2,000 QUIC
# drivers while 200 customers track live orders over WebSocket; prints ping → push latency,
# ping loss and CPU per process. Run from the repository root after
# `cargo build --release -p cell -p loadgen`.
#
#   loadgen/bench/realtime.sh [OUT_DIR]        env: RATE (100000), DURATION (60, seconds),
#                                              CELL_CPUS (0), LOADGEN_CPUS (1), CONFIG (cell TOML)
#
# The cell and the load generator are pinned to different cores (taskset) so that on a 2-core
# box each gets one and the measurement is the cell's, not the scheduler's. The load
# generator spreads its drivers over 32 UDP sockets (--share-sockets), as a NAT or a test rig
# would; the cell still sees 2,000 connections and handshakes.
set -euo pipefail
OUT=${1:-target/bench/realtime-$(date -u +%Y%m%dT%H%M%S)}
RATE=${RATE:-100000}; DURATION=${DURATION:-60}
CELL_CPUS=${CELL_CPUS:-0}; LOADGEN_CPUS=${LOADGEN_CPUS:-1}
. "$(dirname "$0")/lib.sh"   # CELL, L, PIDS, field, wait_ready
for b in "$CELL" "$L"; do [ -x "$b" ] || { echo "missing $b: cargo build --release -p cell -p loadgen"; exit 1; }; done
mkdir -p "$OUT"; DATA=$(mktemp -d)
trap 'kill ${PIDS[@]+"${PIDS[@]}"} 2>/dev/null; wait 2>/dev/null; rm -rf "$DATA"' EXIT
note() { echo "$1 $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/info"; }

note start
# Kernel UDP receive-buffer drops (whole machine), sampled every second: shows *when* pings
# were lost (the pings report has the totals).
( t0=$(date +%s); while sleep 1; do
    echo "$(( $(date +%s) - t0 )) $(awk '/^Udp:/{n++; if (n == 2) print $6}' /proc/net/snmp)"
  done >"$OUT/udp_rcvbuf_errors.txt" ) &
PIDS+=("$!")
CFG=(); [ -n "${CONFIG:-}" ] && CFG=(--config "$CONFIG")
RUST_LOG=warn taskset -c "$CELL_CPUS" "$CELL" run ${CFG[@]+"${CFG[@]}"} --demo --listen 127.0.0.1:0 \
  --quic-listen 127.0.0.1:0 --data-dir "$DATA" >"$OUT/cell.out" 2>"$OUT/cell.err" &
CELLPID=$!; PIDS+=("$CELLPID")
wait_ready "$OUT/cell.out"
H=$(field "$OUT/cell.out" http); Q=$(field "$OUT/cell.out" quic); CA=$(field "$OUT/cell.out" quic_ca)
A=(--target "http://$H" --quic "$Q" --quic-ca "$CA" --token-from-dev --target-pid "$CELLPID")

echo "pings: 2000 drivers, $RATE/s for ${DURATION}s (10 s ramp-up); tracking starts after 20 s"
taskset -c "$LOADGEN_CPUS" "$L" pings "${A[@]}" --drivers 2000 --rate "$RATE" --duration "${DURATION}s" \
  --ramp-up 10s --share-sockets 32 --progress lines --report-json "$OUT/pings.json" >"$OUT/pings.out" 2>&1 &
PINGS=$!; PIDS+=("$PINGS")
sleep 20
note "track start"
taskset -c "$LOADGEN_CPUS" "$L" track "${A[@]}" ${TRACK_ARGS:-} --trackers 200 --duration "$((DURATION - 30))s" --settle 5s \
  --progress lines --report-json "$OUT/track.json" 2>&1 | tee "$OUT/track.out"
note "track end"
wait "$PINGS"
curl -s "http://$H/metrics" >"$OUT/metrics.txt"
note end

echo
echo "=== summary ($OUT) ==="
grep -E "^ping → push|not in the above|^CPU" "$OUT/track.out" | sed 's/^/track: /'
grep -E "^sent |^loss:|^CPU" "$OUT/pings.out" | sed 's/^/pings: /'
echo "kernel receive-buffer drops by second since start (tracking set-up begins at ~20 s):"
awk 'NR > 1 && $2 > p { printf "  %ss: %d\n", $1, $2 - p } { p = $2 }' "$OUT/udp_rcvbuf_errors.txt" | head -20
