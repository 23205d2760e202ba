#!/usr/bin/env bash
# The payment saga under SIGKILL (issue 15, "20 kills"): one release cell (demo mode, the
# sandbox provider keeping its state in the cell's store) under `loadgen orders` with the
# restaurant accepting, rejecting (REJECT_SHARE) and the customer cancelling after the accept
# (CANCEL_SHARE), so captures, voids and refunds all run. The cell is SIGKILLed KILLS times at
# random moments (every 1-4 s, uniformly) and restarted on the same store and port each time.
# Then, with the provider healthy and the load stopped, the worker is given SETTLE_S seconds,
# the cell is stopped and `cell check-payments` reads the whole store and prints totals:
# orders, orders per payment state, captures per order (the sandbox's counts, must be <= 1),
# orders with a pending effect (must be 0), per order authorized = captured + voided and
# refunded <= captured. Exits non-zero on any violation.
# Run from the repository root after `cargo build --release -p cell -p loadgen`.
#
#   loadgen/bench/payments-kill.sh [OUT_DIR]
#   env: KILLS (20), RATE (100 orders/s), REJECT_SHARE (0.2), CANCEL_SHARE (0.2),
#        SETTLE_S (10), SEED (random), BIN_DIR (target/release)
set -euo pipefail
OUT=${1:-target/bench/payments-kill-$(date -u +%Y%m%dT%H%M%S)}
KILLS=${KILLS:-20}; RATE=${RATE:-100}; SETTLE_S=${SETTLE_S:-10}
REJECT_SHARE=${REJECT_SHARE:-0.2}; CANCEL_SHARE=${CANCEL_SHARE:-0.2}
SEED=${SEED:-$RANDOM}
. "$(dirname "$0")/lib.sh"   # CELL, L, PIDS, field, wait_ready
for b in "$CELL" "$L"; do [ -x "$b" ] || { echo "missing $b: cargo build --release -p cell -p loadgen"; exit 1; }; done
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
# lib.sh's trap, made safe under `set -e` (killing an already dead pid must not set the status).
trap 'kill ${PIDS[@]+"${PIDS[@]}"} 2>/dev/null || true; wait 2>/dev/null || true' EXIT
note() { echo "$1 $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/info"; }
printf '[demo]\nrestaurants = 60\nradius_km = 3.0\n' >"$OUT/cell.toml"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The kill moments: KILLS gaps of 1-4 s from SEED, so a failing run can be replayed.
mapfile -t GAPS < <(python3 -c "import random; r=random.Random($SEED); print('\n'.join('%.2f' % r.uniform(1,4) for _ in range($KILLS)))")
TOTAL=$(python3 -c "print(int(sum(map(float, '${GAPS[*]}'.split()))) + 5)")
echo "seed $SEED, $KILLS kills over ~${TOTAL}s at $RATE orders/s" | tee "$OUT/info"

start=0
start_cell() {
  start=$((start + 1))
  "$CELL" run --config "$OUT/cell.toml" --demo --listen "127.0.0.1:$PORT" --quic-listen 127.0.0.1:0 \
    --data-dir "$OUT/cell" >"$OUT/cell.$start.out" 2>"$OUT/cell.$start.err" &
  CELLPID=$!; PIDS+=("$CELLPID")
  wait_ready "$OUT/cell.$start.out"
}

note start
start_cell
"$L" orders --target "http://127.0.0.1:$PORT" --token-from-dev --checkout-only --rate "$RATE" \
  --duration "${TOTAL}s" --ramp-up 1s --timeout 2s --center 52.52,13.405 --spread-km 2 \
  --reject-share "$REJECT_SHARE" --cancel-share "$CANCEL_SHARE" \
  --report-json "$OUT/load.json" >"$OUT/load.txt" 2>&1 &
LPID=$!; PIDS+=("$LPID")
for i in $(seq 1 "$KILLS"); do
  sleep "${GAPS[$((i - 1))]}"
  kill -9 "$CELLPID"; wait "$CELLPID" 2>/dev/null || true
  echo "kill $i at $(date -u +%T.%N | cut -c1-12)" >>"$OUT/info"
  start_cell
done
wait "$LPID" || true
note "load done"
tail -3 "$OUT/load.txt" || true
sleep "$SETTLE_S"
# A clean stop, then the checker opens the store the cell released.
kill "$CELLPID"; wait "$CELLPID" 2>/dev/null || true
note "checking"
set +e
"$CELL" check-payments --config "$OUT/cell.toml" --demo --data-dir "$OUT/cell" | tee "$OUT/check.json"
rc=${PIPESTATUS[0]}
set -e
python3 - "$OUT/check.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"orders {r['orders']}  per state {r['by_payment_state']}")
print(f"captures per order {r['captures_per_order']}  pending effects {r['pending_effects']}  "
      f"retry records {r['retry_records']}  awaiting restaurant {r['awaiting_restaurant']}  "
      f"authorizations without order {r['authorizations_without_order']}")
print(f"captured {r['captured_cents']}  voided {r['voided_cents']}  refunded {r['refunded_cents']} (cents)")
print(f"violations {len(r['violations'])}")
PY
[ "$rc" -eq 0 ] && echo "PASS: $KILLS kills, no violation" || echo "FAIL: see $OUT/check.json"
exit "$rc"
