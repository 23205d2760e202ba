#!/usr/bin/env bash
# Catalog at metro scale (issue 25): one release cell with a demo metro of RESTAURANTS
# restaurants. Seeds it once (timed: generation and import), then RUNS times: restart the cell
# on that store (timed: process start to its READY line), read its resident memory, and run
# `loadgen search` and `loadgen menu` at RATE/s. Prints min / median / max over the runs.
# Run from the repository root after `cargo build --release -p cell -p loadgen`.
#
#   loadgen/bench/catalog.sh [OUT_DIR]
#   env: RESTAURANTS (50000), RADIUS_KM (25), RATE (5000), SECS (20), RUNS (3),
#        CELL_CPUS, LOADGEN_CPUS (unset: not pinned, like the other HTTP benches; e.g. 0 and 1
#        pin the cell and the load generator to one core each), BIN_DIR (target/release),
#        CLOCK_OFFSET_MS (unset: the real clock; else the cell's `[demo] clock_offset_ms`),
#        LOCAL_HOUR (e.g. 20: sets CLOCK_OFFSET_MS so that the Berlin demo metro's clock reads
#        that hour today, UTC+1 as in winter; how many restaurants are open, and so how many
#        a search matches, depends on the local time)
#
# Memory per restaurant is (RSS after load - RSS of an empty cell) / RESTAURANTS, the empty
# cell measured in each run the same way (same binary, config and flags, no restaurants).
# Two menu runs: `menu` reads menus of the restaurants its warm-up searches found near the
# centre (the default: a hot set smaller than the cache), `menu-wide` draws them from 2,000
# searches over 20 km, more restaurants than the cache holds, so many reads miss and go to
# the store. The hit rate of each is the cell's own counters over the run.
set -euo pipefail
OUT=${1:-target/bench/catalog-$(date -u +%Y%m%dT%H%M%S)}
RESTAURANTS=${RESTAURANTS:-50000}; RADIUS_KM=${RADIUS_KM:-25}
RATE=${RATE:-5000}; SECS=${SECS:-20}; RUNS=${RUNS:-3}
PIN_CELL=(); [ -n "${CELL_CPUS:-}" ] && PIN_CELL=(taskset -c "$CELL_CPUS")
PIN_LOADGEN=(); [ -n "${LOADGEN_CPUS:-}" ] && PIN_LOADGEN=(taskset -c "$LOADGEN_CPUS")
. "$(dirname "$0")/lib.sh"   # CELL, L, PIDS, field, wait_ready
for b in "$CELL" "$L"; do [ -x "$b" ] || { echo "missing $b: cargo build --release -p cell -p loadgen"; exit 1; }; done
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
DATA=$(mktemp -d); EMPTY=$(mktemp -d)
trap 'kill ${PIDS[@]+"${PIDS[@]}"} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DATA" "$EMPTY"' EXIT
note() { echo "$1 $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/info"; }
[ -n "${LOCAL_HOUR:-}" ] && CLOCK_OFFSET_MS=$(local_hour_offset_ms)
printf '[demo]\nrestaurants = %s\nradius_km = %s\nclock_offset_ms = %s\n' "$RESTAURANTS" "$RADIUS_KM" "${CLOCK_OFFSET_MS:-0}" >"$OUT/cell.toml"
printf '[demo]\nrestaurants = 0\n' >"$OUT/empty.toml"
ms() { date +%s%3N; }
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
# utime + stime of process $1, in clock ticks (fields 14 and 15; the name in field 2 has no
# spaces here).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Starts a cell on data dir $1 with config $2, output in $3.*; sets CELLPID, H, READY_MS.
start_cell() {
  local t0; t0=$(ms)
  RUST_LOG=info ${PIN_CELL[@]+"${PIN_CELL[@]}"} "$CELL" run --config "$2" --demo --listen 127.0.0.1:0 \
    --quic-listen 127.0.0.1:0 --data-dir "$1" >"$3.out" 2>"$3.err" &
  CELLPID=$!; PIDS+=("$CELLPID")
  # READY is polled every 10 ms here (lib.sh's wait_ready polls every 0.5 s).
  for _ in $(seq 1 60000); do grep -q '^READY' "$3.out" 2>/dev/null && break; sleep 0.01; done
  grep -q '^READY' "$3.out" || { echo "no READY in $3.out"; exit 1; }
  READY_MS=$(( $(ms) - t0 ))
  H=$(field "$3.out" http)
}
# A clean stop (SIGTERM): the next start takes the cell's lease at once.
stop_cell() { kill "$CELLPID" 2>/dev/null || true; wait "$CELLPID" 2>/dev/null || true; }
# Loadgen scenario $1 into $2.json / $2.txt, extra flags after.
# Also writes $2.cpu.json: the cell's CPU seconds over the whole loadgen run (user + system,
# from /proc/<pid>/stat; warm-up included, as are its requests in the cell's counter).
load() {
  local which=$1 out=$2 t0; shift 2
  t0=$(cpu_ticks "$CELLPID")
  ${PIN_LOADGEN[@]+"${PIN_LOADGEN[@]}"} "$L" "$which" --target "http://$H" --token-from-dev --rate "$RATE" \
    --duration "${SECS}s" --ramp-up 3s --target-pid "$CELLPID" "$@" --report-json "$out.json" >"$out.txt" 2>&1 || true
  python3 -c "import json,sys; json.dump({'cell_cpu_s': int(sys.argv[1]) / int(sys.argv[2])}, open(sys.argv[3], 'w'))" \
    "$(( $(cpu_ticks "$CELLPID") - t0 ))" "$(getconf CLK_TCK)" "$out.cpu.json"
  tail -2 "$out.txt"
}

note start
echo "=== seeding $RESTAURANTS restaurants within $RADIUS_KM km (generation and import)"
start_cell "$DATA" "$OUT/cell.toml" "$OUT/seed"
echo "{\"seed_ready_ms\": $READY_MS, \"store_bytes\": $(du -sb "$DATA" | cut -f1)}" >"$OUT/seed.json"
cat "$OUT/seed.json"
stop_cell

for i in $(seq 1 "$RUNS"); do
  echo "=== run $i of $RUNS"
  R="$OUT/run$i"; mkdir -p "$R"
  rm -rf "$EMPTY"; mkdir -p "$EMPTY"
  start_cell "$EMPTY" "$OUT/empty.toml" "$R/empty"; sleep 2; EMPTY_KB=$(rss_kb "$CELLPID"); stop_cell
  start_cell "$DATA" "$OUT/cell.toml" "$R/cell"; RESTART_MS=$READY_MS
  sleep 2; LOADED_KB=$(rss_kb "$CELLPID")
  note "run $i: restart ${RESTART_MS} ms, RSS ${LOADED_KB} kB (empty ${EMPTY_KB} kB)"
  # How many restaurants a 3 km search at the centre matches now (open ones only).
  TOK=$(curl -s -X POST "http://$H/api/v1/dev/token" -H 'content-type: application/json' \
    -d '{"role":"customer","sub":"1"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  curl -s -H "authorization: Bearer $TOK" "http://$H/api/v1/restaurants?lat=52.52&lng=13.405&radius=3km" \
    | python3 -c 'import json,sys; print(json.dumps({"centre_matches": json.load(sys.stdin)["total"]}))' >"$R/matches.json"
  note "run $i: a 3 km search at the centre matches $(cat "$R/matches.json")"
  load search "$R/search"
  load menu "$R/menu"
  load menu "$R/menu-wide" --warmup-points 2000 --spread-km 20
  AFTER_KB=$(rss_kb "$CELLPID")
  curl -s "http://$H/metrics" >"$R/metrics.txt"
  stop_cell
  echo "{\"restart_ms\": $RESTART_MS, \"empty_kb\": $EMPTY_KB, \"loaded_kb\": $LOADED_KB, \"after_menus_kb\": $AFTER_KB}" >"$R/cell.json"
done
note end

echo
echo "=== summary over $RUNS run(s), $RESTAURANTS restaurants ($OUT) ==="
python3 - "$OUT" "$RUNS" "$RESTAURANTS" "$RATE" <<'PY'
import json, os, statistics, sys
out, runs, n, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
seed = json.load(open(os.path.join(out, "seed.json")))
rows = {}
def add(k, v):
    rows.setdefault(k, []).append(v)
def op(i, name):
    p = os.path.join(out, f"run{i}", f"{name}.json")
    return json.load(open(p)) if os.path.exists(p) else None
for i in range(1, runs + 1):
    c = json.load(open(os.path.join(out, f"run{i}", "cell.json")))
    add("restart to READY, s", c["restart_ms"] / 1000)
    add("RSS after load, KB per restaurant", (c["loaded_kb"] - c["empty_kb"]) * 1.024 / n)
    add("RSS after the menu runs, KB per restaurant", (c["after_menus_kb"] - c["empty_kb"]) * 1.024 / n)
    add("RSS of an empty cell, MB", c["empty_kb"] * 1.024 / 1000)
    mp = os.path.join(out, f"run{i}", "matches.json")
    if os.path.exists(mp):
        add("matches of a 3 km search at the centre", json.load(open(mp))["centre_matches"])
    for name in ("search", "menu", "menu-wide"):
        r = op(i, name)
        if not r:
            continue
        o = r["ops"][0]
        add(f"{name} at {rate}/s: p99 ms", o["latency_ms"]["p99"])
        add(f"{name}: ok/s", o["rate_ok_per_s"])
        add(f"{name}: errors", o["errors"])
        if name.startswith("menu"):
            f = r.get("server", {}).get("families", {})
            h, m = f.get("catalog_menu_cache_hits_total", 0), f.get("catalog_menu_cache_misses_total", 0)
            add(f"{name}: cache hit rate %", 100 * h / (h + m) if h + m else None)
        cores = r.get("cpu", {}).get("target_cores")
        add(f"{name}: cell CPU cores", cores)
        fam = r.get("server", {}).get("families", {})
        reqs = fam.get("cell_http_requests_total") or o["sent"]
        cp = os.path.join(out, f"run{i}", f"{name}.cpu.json")
        if os.path.exists(cp):
            add(f"{name}: cell CPU µs per request", json.load(open(cp))["cell_cpu_s"] * 1e6 / reqs)
        lg = r.get("cpu", {}).get("loadgen_cores")
        span = r.get("ramp_up_s", 0) + r.get("steady_s", 0)
        if lg is not None and span:
            add(f"{name}: loadgen CPU µs per request", lg * span * 1e6 / o["sent"])
        add(f"{name}: loadgen dispatch lag max, ms", r.get("max_dispatch_lag_ms"))
        add(f"{name}: load average (1 min) at start", float(r["machine"]["loadavg_start"].split()[0]))
def fmt(v):
    return "-" if v is None else f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
print(f"seeding (generation + import, first start to READY): {seed['seed_ready_ms'] / 1000:.1f} s; "
      f"store on disk {seed['store_bytes'] / 1e6:.0f} MB")
print(f"| {'measure':<44} | {'min':>9} | {'median':>9} | {'max':>9} |")
print(f"|{'-' * 46}|{'-' * 11}|{'-' * 11}|{'-' * 11}|")
for k, vs in rows.items():
    vs = [v for v in vs if v is not None]
    if not vs:
        continue
    print(f"| {k:<44} | {fmt(min(vs)):>9} | {fmt(statistics.median(vs)):>9} | {fmt(max(vs)):>9} |")
PY
