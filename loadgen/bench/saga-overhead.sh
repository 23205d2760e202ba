#!/usr/bin/env bash
# What the payment saga adds to accepting an order (issue 15: "<= 1 ms to accept p99 at 1,000
# orders/s"). ROUNDS rounds; each runs `loadgen orders --checkout-only` at RATE orders/s for
# SECS s against a fresh release cell twice: once with the payment worker performing the
# effects (`[payment_worker] perform_effects = true`, the default: every accept's capture is
# made while the load runs) and once with it off (`perform_effects = false`, a switch that
# exists only for this benchmark: captures stay pending). The order alternates per round.
# Prints, per round, accept p50/p99 both ways, the p99 difference and the ratio on/off, then
# min / median / max over the rounds, the p99 of all rounds pooled (their HdrHistograms merged),
# and the cell's CPU per order both ways, with the machine's load average at each start.
# Run from the repository root after `cargo build --release -p cell -p loadgen`.
#
#   loadgen/bench/saga-overhead.sh [OUT_DIR]
#   env: RATE (1000), SECS (20), ROUNDS (5), BIN_DIR (target/release), LOCAL_HOUR (19: the
#        demo city's clock reads 19:00, so the same restaurants are open whenever it runs;
#        the restaurants taking orders share the load, and each tablet has its own rate limit)
set -euo pipefail
OUT=${1:-target/bench/saga-overhead-$(date -u +%Y%m%dT%H%M%S)}
RATE=${RATE:-1000}; SECS=${SECS:-20}; ROUNDS=${ROUNDS:-5}; LOCAL_HOUR=${LOCAL_HOUR:-19}
. "$(dirname "$0")/lib.sh"   # CELL, L, PIDS, field, wait_ready
for b in "$CELL" "$L"; do [ -x "$b" ] || { echo "missing $b: cargo build --release -p cell -p loadgen"; exit 1; }; done
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
# lib.sh's trap, made safe under `set -e` (killing an already dead pid must not set the status).
trap 'kill ${PIDS[@]+"${PIDS[@]}"} 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for mode in on off; do
  flag=true; [ "$mode" = off ] && flag=false
  printf '[demo]\nrestaurants = 300\nradius_km = 4.0\nclock_offset_ms = %s\n\n[payment_worker]\nperform_effects = %s\n' "$(local_hour_offset_ms)" "$flag" >"$OUT/$mode.toml"
done

one() { # round, mode
  local i=$1 mode=$2 dir
  dir=$(mktemp -d)
  echo "round $i $mode start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/info"
  "$CELL" run --config "$OUT/$mode.toml" --demo --listen 127.0.0.1:0 --quic-listen 127.0.0.1:0 \
    --data-dir "$dir" >"$OUT/cell-$mode-$i.out" 2>"$OUT/cell-$mode-$i.err" &
  local pid=$!; PIDS+=("$pid")
  wait_ready "$OUT/cell-$mode-$i.out"
  local h; h=$(field "$OUT/cell-$mode-$i.out" http)
  "$L" orders --checkout-only --target "http://$h" --token-from-dev --rate "$RATE" \
    --duration "${SECS}s" --ramp-up 3s --target-pid "$pid" \
    --report-json "$OUT/$mode-$i.json" >"$OUT/$mode-$i.txt" 2>&1 || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}

for i in $(seq 1 "$ROUNDS"); do
  if [ $((i % 2)) -eq 1 ]; then one "$i" off; one "$i" on; else one "$i" on; one "$i" off; fi
done

python3 -c 'import hdrh' 2>/dev/null || pip install -q hdrhistogram >/dev/null 2>&1 || true
python3 - "$OUT" "$ROUNDS" "$RATE" <<'PY'
import json, sys, statistics, os
out, rounds, rate = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def report(mode, i):
    return json.load(open(os.path.join(out, f"{mode}-{i}.json")))
def op(d, name):
    return next(o for o in d["ops"] if o["op"] == name)
def cpu_us_per_order(d):
    # The cell's CPU over the run (cores x wall) per order placed and accepted.
    c = d["cpu"].get("target_cores")
    placed = op(d, "place")["ok"] + op(d, "place_queued")["ok"]
    return c * 1e6 / op(d, "place")["rate_ok_per_s"] if c and placed else float("nan")
on99, off99, deltas, ratios, cpu = [], [], [], [], {"on": [], "off": []}
print(f"\naccept at {rate} orders/s, payment worker effects on vs off (fresh cell each)")
print(f"{'round':>5} {'mode':>4} {'ok/s':>7} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} {'cell CPU µs/order':>18}")
for i in range(1, rounds + 1):
    r = {m: report(m, i) for m in ("off", "on")}
    for m in ("off", "on"):
        o = op(r[m], "accept"); u = cpu_us_per_order(r[m]); cpu[m].append(u)
        print(f"{i:>5} {m:>4} {o['rate_ok_per_s']:>7.0f} {o['errors']:>6} {o['latency_ms']['p50']:>7.2f} {o['latency_ms']['p99']:>7.2f} {u:>18.0f}")
    a, b = op(r["on"], "accept")["latency_ms"]["p99"], op(r["off"], "accept")["latency_ms"]["p99"]
    on99.append(a); off99.append(b); deltas.append(a - b); ratios.append(a / b if b else float("nan"))
def mmm(xs, f):
    return f"min {f(min(xs))} / median {f(statistics.median(xs))} / max {f(max(xs))}"
print(f"accept p99 off: {mmm(off99, lambda x: f'{x:.2f} ms')}")
print(f"accept p99 on:  {mmm(on99, lambda x: f'{x:.2f} ms')}")
print(f"p99 added (on - off), per round: {mmm(deltas, lambda x: f'{x:+.2f} ms')}")
print(f"ratio on/off, per round: {mmm(ratios, lambda x: f'{x:.2f}')}")
print(f"cell CPU per order off: {mmm(cpu['off'], lambda x: f'{x:.0f} µs')}")
print(f"cell CPU per order on:  {mmm(cpu['on'], lambda x: f'{x:.0f} µs')}")
try:
    from hdrh.histogram import HdrHistogram
    pooled = {}
    for m in ("off", "on"):
        h = None
        for i in range(1, rounds + 1):
            x = HdrHistogram.decode(op(report(m, i), "accept")["latency_hist_b64"])
            if h is None: h = x
            else: h.add(x)
        pooled[m] = h
    p = {m: pooled[m].get_value_at_percentile(99) / 1000 for m in pooled}
    n = {m: pooled[m].get_total_count() for m in pooled}
    print(f"pooled over {rounds} rounds ({n['off']} / {n['on']} accepts): accept p99 off {p['off']:.2f} ms, "
          f"on {p['on']:.2f} ms, added {p['on'] - p['off']:+.2f} ms, ratio {p['on'] / p['off']:.2f}")
except ImportError:
    print("pooled p99: skipped (pip install hdrhistogram to merge the rounds' histograms)")
PY
