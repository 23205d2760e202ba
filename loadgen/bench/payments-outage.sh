#!/usr/bin/env bash
# Orders through a payment provider outage (issue 15, "Done when": provider down for 60 s
# while `loadgen orders` runs at 200 orders/s). One release demo cell with the payment
# sandbox; `loadgen orders` places orders at RATE/s for BEFORE + DOWN + AFTER seconds; BEFORE
# seconds in, the sandbox is made unavailable for DOWN seconds through its fault endpoint
# (`PUT /api/v1/admin/payments/sandbox/faults {"down_for_ms": ...}`, admin token).
#
# Then it waits for the cell's authorization queue to drain (gauge cell_payment_queue_depth
# at 0, at most QUEUE_WAIT s), and reads every order the run placed (each loadgen customer's
# `GET /api/v1/orders?customer=me`). Orders the queue authorized after the outage are
# `pending` and nobody accepted them yet (loadgen hands a 202 order to no restaurant): the
# checker accepts them as their restaurant would, then counts.
#
# The report: placement answers 201 (authorized at once) / 202 (queued) / 4xx / 5xx /
# timeouts; loadgen's accepts by status class; after recovery every order as captured and
# progressing, authorized but not accepted (the checker's accept failed), cancelled by
# reason, still queued, or other. Exit status 1 when any placement or accept answered 5xx,
# an order is still queued, or an order is in none of the expected states.
#
# Run from the repository root after `cargo build --release -p cell -p loadgen`.
#
#   loadgen/bench/payments-outage.sh [OUT_DIR]
#   env: RATE (200), BEFORE (30), DOWN (60; 0 = no outage), AFTER (60) seconds,
#        QUEUE_WAIT (700), SETTLE_WAIT (180: for the payment worker's pending effects),
#        BIN_DIR (target/release)
#
# Loadgen's customers: it uses enough distinct customers that none places more than 4 orders
# (the cell allows 5 an hour per customer), with ids no earlier run in the hour used, so the
# order limit stays out of the way without turning it off.
set -euo pipefail
OUT=${1:-target/bench/payments-outage-$(date -u +%Y%m%dT%H%M%S)}
RATE=${RATE:-200}; BEFORE=${BEFORE:-30}; DOWN=${DOWN:-60}; AFTER=${AFTER:-60}
QUEUE_WAIT=${QUEUE_WAIT:-700}
. "$(dirname "$0")/lib.sh"   # CELL, L, PIDS, field, wait_ready
for b in "$CELL" "$L"; do [ -x "$b" ] || { echo "missing $b: cargo build --release -p cell -p loadgen"; exit 1; }; done
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
note() { echo "$1 $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/info"; }

# The default config: 5 s payment timeout, 2 retries, breaker opening after 5 failures with a
# 30 s cooldown, queue age 10 minutes.
printf '[demo]\nrestaurants = 3000\n' >"$OUT/cell.toml"
RUST_LOG=info "$CELL" run --config "$OUT/cell.toml" --demo --listen 127.0.0.1:0 \
  --quic-listen 127.0.0.1:0 --data-dir "$OUT/cell" >"$OUT/cell.ready" 2>"$OUT/cell.log" &
CELLPID=$!; PIDS+=("$CELLPID")
wait_ready "$OUT/cell.ready"
H=$(field "$OUT/cell.ready" http)
BASE="http://$H"
ADMIN=$(curl -sf "$BASE/api/v1/dev/token" -H 'content-type: application/json' \
  -d '{"role":"admin","sub":"0"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
faults() {
  curl -s -o "$OUT/faults.json" -w '%{http_code}' -X PUT "$BASE/api/v1/admin/payments/sandbox/faults" \
    -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' -d "$1"
}
# The endpoint must exist before the run starts: fail now rather than after minutes of load.
# DOWN=0 runs without an outage (a baseline, or a check of this script without the endpoint).
if [ "$DOWN" -gt 0 ]; then
  code=$(faults '{"down_for_ms": 0}')
  [ "$code" = 200 ] || { echo "fault endpoint answered $code: $(cat "$OUT/faults.json")"; exit 1; }
fi

SECS=$((BEFORE + DOWN + AFTER))
note "start: $RATE orders/s for $SECS s, provider down from ${BEFORE}s for ${DOWN}s"
"$L" orders --target "$BASE" --token-from-dev --rate "$RATE" --duration "${SECS}s" --ramp-up 0s \
  --target-pid "$CELLPID" --report-json "$OUT/orders.json" >"$OUT/orders.txt" 2>&1 &
LOADPID=$!; PIDS+=("$LOADPID")
# Loadgen mints its tokens and warms up first; the outage is timed from its first order.
for _ in $(seq 1 600); do
  grep -q 'restaurants in the warm-up pool' "$OUT/orders.txt" 2>/dev/null && break
  kill -0 "$LOADPID" 2>/dev/null || { echo "loadgen stopped:"; tail -5 "$OUT/orders.txt"; exit 1; }
  sleep 0.5
done
sleep "$BEFORE"
if [ "$DOWN" -gt 0 ]; then
  code=$(faults "{\"down_for_ms\": $((DOWN * 1000))}")
  note "provider down (fault endpoint $code: $(cat "$OUT/faults.json"))"
  sleep "$DOWN"
  note "provider back"
fi
wait "$LOADPID" || true
tail -3 "$OUT/orders.txt"

depth() { curl -s "$BASE/metrics" | awk '$1 == "cell_payment_queue_depth" {print $2}'; }
for _ in $(seq 1 "$QUEUE_WAIT"); do
  d=$(depth); [ "${d:-0}" = 0 ] && break; sleep 1
done
note "queue depth $(depth) after the run"
curl -s "$BASE/metrics" >"$OUT/metrics.txt"

python3 - "$OUT" "$BASE" <<'PY'
import json, sys, urllib.request, urllib.error
from collections import Counter
out, base = sys.argv[1], sys.argv[2]
report = json.load(open(f"{out}/orders.json"))
ops = {o["op"]: o for o in report["ops"]}

def classes(o):
    c = Counter()
    for code, n in o["failed"].items():
        c[f"{code[0]}xx"] += n
    c["timeout"] += o["timed_out"]
    c["transport"] += o["transport_errors"]
    return c

def call(method, path, token, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json",
                                          **({"authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")

def token(role, sub):
    s, v = call("POST", "/api/v1/dev/token", None, {"role": role, "sub": str(sub)})
    assert s == 200, (s, v)
    return v["token"]

place, queued = ops["place"], ops["place_queued"]
accept = ops["accept"]
pc, ac = classes(place), classes(accept)
print(f"\nplacement: {place['sent']} sent; 201 (authorized at once) {place['ok'] - queued['ok']}, "
      f"202 (queued) {queued['ok']}, 4xx {pc['4xx']}, 5xx {pc['5xx']}, "
      f"timeouts {pc['timeout']}, transport {pc['transport']}  (by status: {place['failed']})")
print(f"accept (loadgen, orders answered 201): 2xx {accept['ok']}, 4xx {ac['4xx']}, 5xx {ac['5xx']}, "
      f"timeouts {ac['timeout']}  (by status: {accept['failed']})")

# Loadgen's customers: ids from a base derived from its start time (loadgen/src/run.rs).
first = 1 + (report["started_unix_s"] % 100_000) * 1_000_000
customers = report["config"]["customers"]
orders = []
for i in range(customers):
    t = token("customer", first + i)
    path = "/api/v1/orders?customer=me&limit=100"
    while path:
        s, v = call("GET", path, t)
        assert s == 200, (s, v)
        orders += [dict(o, _token=t) for o in v["orders"]]
        cur = v.get("next_cursor")
        path = f"/api/v1/orders?customer=me&limit=100&cursor={cur}" if cur else None

# Authorized by the queue after the outage: accept them as their restaurant would.
rest_tokens, late_accepts = {}, Counter()
for o in orders:
    if o["status"] == "pending" and o["payment_status"] == "authorized":
        rid = o["restaurant"]["id"]
        rt = rest_tokens.setdefault(rid, token("restaurant", rid))
        s, v = call("PATCH", f"/api/v1/restaurants/orders/{o['order_id']}", rt, {"status": "accepted"})
        late_accepts[f"{s // 100}xx"] += 1
        if s == 200:
            s2, v2 = call("GET", f"/api/v1/orders/{o['order_id']}", rt)
            if s2 == 200:
                o.update(v2)

# The payment worker performs the captures those accepts committed as pending (and any other
# effect still pending): wait until none is, up to SETTLE_WAIT seconds.
import os, time
deadline = time.time() + float(os.environ.get("SETTLE_WAIT", "180"))
pending = [o for o in orders if o["payment_status"].endswith("_pending")]
while pending and time.time() < deadline:
    time.sleep(1)
    still = []
    for o in pending:
        s, v = call("GET", f"/api/v1/orders/{o['order_id']}", o["_token"])
        if s == 200:
            o.update(v)
        if o["payment_status"].endswith("_pending"):
            still.append(o)
    pending = still
print(f"payment effects still pending after settling: {len(pending)}")

progressing = {"confirmed", "preparing", "ready_for_pickup", "driver_assigned",
               "driver_at_restaurant", "picked_up", "delivering", "delivered"}
tally, reasons = Counter(), Counter()
for o in orders:
    st, pay = o["status"], o["payment_status"]
    if st == "cancelled":
        tally["cancelled"] += 1
        reasons[o.get("cancel_reason") or "(no reason)"] += 1
    elif st == "payment_pending":
        tally["still queued"] += 1
    elif st in progressing and pay == "captured":
        tally["captured and progressing"] += 1
    elif st == "pending" and pay == "authorized":
        tally["authorized, not accepted"] += 1
    else:
        tally[f"other: {st}/{pay}"] += 1
print(f"\nafter recovery: {len(orders)} orders of {customers} customers "
      f"(the checker accepted the queue's late authorizations: {dict(late_accepts)})")
for k, n in sorted(tally.items()):
    print(f"  {k:<32} {n}")
for r, n in sorted(reasons.items()):
    print(f"    cancelled, reason {r:<20} {n}")
json.dump({"placement": {"201": place["ok"] - queued["ok"], "202": queued["ok"], **pc},
           "accept": {"2xx": accept["ok"], **ac}, "late_accepts": late_accepts,
           "orders": len(orders), "states": tally, "cancel_reasons": reasons},
          open(f"{out}/summary.json", "w"), indent=1)
bad = pc["5xx"] + ac["5xx"] + late_accepts["5xx"] + tally["still queued"] + reasons["(no reason)"] \
    + sum(n for k, n in tally.items() if k.startswith("other") or k.startswith("authorized"))
print("\nPASS" if bad == 0 else f"\nFAIL: {bad} answers or orders outside the expected cases")
sys.exit(0 if bad == 0 else 1)
PY
