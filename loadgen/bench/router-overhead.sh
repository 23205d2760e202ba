#!/usr/bin/env bash
# Router overhead: `search` at RATE/s straight to a cell and through the router in front of
# it, alternating ROUNDS times on the same cell, so both see the same box. Prints p50/p99 for
# each and the p99 the router adds. Needs release builds:
#   cargo build --release -p cell -p router -p loadgen --bin cell --bin router --bin loadgen
# Usage: loadgen/bench/router-overhead.sh   (env: RATE=5000 SECS=20 ROUNDS=2 OUT=dir)
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE=${RATE:-5000}; SECS=${SECS:-20}; ROUNDS=${ROUNDS:-2}
OUT=${OUT:-$(mktemp -d /tmp/router-overhead.XXXX)}
. loadgen/bench/lib.sh
start_cell_and_router
echo "cell $CELL_HTTP, router $ROUTER_HTTP; search at $RATE/s for ${SECS}s, $ROUNDS rounds each; reports in $OUT"

for i in $(seq 1 "$ROUNDS"); do
  for via in direct router; do
    if [ "$via" = direct ]; then T="http://$CELL_HTTP"; PID=$CELLPID; else T="http://$ROUTER_HTTP"; PID=$ROUTERPID; fi
    echo "== round $i: $via"
    "$L" search --target "$T" --jwt-secret "$SECRET" --rate "$RATE" --duration "${SECS}s" --ramp-up 3s \
      --target-pid "$PID" --report-json "$OUT/$via-$i.json" >"$OUT/$via-$i.txt" 2>&1 || true
    tail -3 "$OUT/$via-$i.txt"
  done
done

python3 - "$OUT" "$ROUNDS" "$RATE" <<'PY'
import json, sys, statistics, os
out, rounds, rate = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows, added = [], []
for i in range(1, rounds + 1):
    r = {}
    for via in ("direct", "router"):
        d = json.load(open(os.path.join(out, f"{via}-{i}.json")))
        op = d["ops"][0]
        r[via] = op
        cpu = d.get("cpu", {})
        rows.append((i, via, op["rate_ok_per_s"], op["errors"], op["latency_ms"]["p50"], op["latency_ms"]["p99"], op["latency_ms"]["p999"], cpu))
    added.append(r["router"]["latency_ms"]["p99"] - r["direct"]["latency_ms"]["p99"])
print()
print(f"search at {rate}/s: direct to the cell vs through the router (same cell, alternating)")
print(f"{'round':>5} {'path':>7} {'ok/s':>8} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8}")
for i, via, ok, err, p50, p99, p999, _ in rows:
    print(f"{i:>5} {via:>7} {ok:>8.0f} {err:>6} {p50:>7.2f} {p99:>7.2f} {p999:>8.2f}")
print(f"added p99 per round (router - direct): {', '.join(f'{a:+.2f} ms' for a in added)}; "
      f"median {statistics.median(added):+.2f} ms (target <= 1 ms)")
PY
