#!/usr/bin/env python3
"""ops.sh's summary: reads the reports in OUT (loadgen's orders.json, drivesim.json,
trackers.json, cells.jsonl, ops.env, the cells' metrics) and prints the figures; also writes
them as OUT/ops-summary.json.

usage: ops_summary.py OUT
"""
import json, os, re, sys

out = sys.argv[1]
path = lambda f: os.path.join(out, f)
ops = dict(l.strip().split("=", 1) for l in open(path("ops.env")) if "=" in l)
ops = {k: int(v) for k, v in ops.items()}
res = {"ops": ops}


def pct(v, q):
    """Nearest-rank quantile of sorted v."""
    if not v:
        return None
    return v[min(len(v), max(1, -(-int(q * 1000) * len(v) // 1000))) - 1]


# --- client errors -------------------------------------------------------------------------
# Retry-safe as the router sees them: GETs, and POSTs with an Idempotency-Key (place).
SAFE = {"search", "menu", "place"}
lg = json.load(open(path("orders.json")))
rows, safe_err, other_err, safe_n, other_n = [], {}, {}, 0, 0
for op in lg["ops"]:
    name = op["op"]
    if name == "order":  # the whole flow: its steps are counted on their own
        continue
    errs = dict(op.get("failed", {}))
    if op.get("timed_out"):
        errs["timeout"] = op["timed_out"]
    if op.get("transport_errors"):
        errs["transport"] = op["transport_errors"]
    bucket, n = (safe_err, "safe") if name in SAFE else (other_err, "other")
    for k, v in errs.items():
        bucket[k] = bucket.get(k, 0) + v
    if name in SAFE:
        safe_n += op["sent"]
    else:
        other_n += op["sent"]
    rows.append((name, n, op["sent"], op["ok"], op["errors"], errs, op["latency_ms"]["p99"], op["latency_ms"]["max"]))
flows = next((o for o in lg["ops"] if o["op"] == "order"), None)
print()
print("client errors (loadgen orders through the router; steady state):")
print(f"  {'op':<10} {'kind':<6} {'sent':>7} {'ok':>7} {'errors':>6}  {'p99 ms':>8} {'max ms':>8}  by status")
for name, kind, sent, ok, e, errs, p99, mx in rows:
    print(f"  {name:<10} {kind:<6} {sent:>7} {ok:>7} {e:>6}  {p99:>8.1f} {mx:>8.1f}  {errs or ''}")
print(f"  retry-safe (search, menu, place): {sum(safe_err.values())} errors of {safe_n} sent {safe_err or ''}")
print(f"  others (quote, accept, preparing, ready): {sum(other_err.values())} errors of {other_n} sent {other_err or ''}")
if flows:
    print(f"  order flows: {flows['sent']} started, {flows['ok']} completed, {flows['errors']} failed")
res["errors"] = {"retry_safe": safe_err, "retry_safe_sent": safe_n, "other": other_err, "other_sent": other_n}

# --- operations ----------------------------------------------------------------------------
def parse(line):
    try:
        return json.loads(line)
    except ValueError:  # the router did not answer that second
        return None


cells_log = [s for s in map(parse, open(path("cells.jsonl"))) if s and s.get("cells")]


def cell(snapshot, cid):
    c = snapshot.get("cells") or {}
    return next((x for x in c.get("cells", []) if x["id"] == cid), {})


move = json.load(open(path("move.json"))) if os.path.getsize(path("move.json")) else {}
print()
print("operations:")
print(f"  move:    {ops['MOVE_MS']} ms (`router regions move`), answer {json.dumps(move)[:200]}")
start = ops["DRAIN_START"]
drained_at = next((s["t"] for s in cells_log if s["t"] >= start and cell(s, 1).get("state") == "drained"), None)
drains = [cell(s, 1).get("drain") for s in cells_log if s["t"] >= start and cell(s, 1).get("drain")]
peak = max((d["orders_left"] for d in drains), default=None)
first = drains[0] if drains else None
metrics = open(path("berlin.metrics")).read() if os.path.exists(path("berlin.metrics")) else ""


def metric(text, name, labels=""):
    tot = 0.0
    for m in re.finditer(rf"^{name}(\{{[^}}]*\}})? ([0-9.e+]+)$", text, re.M):
        if labels in (m.group(1) or ""):
            tot += float(m.group(2))
    return int(tot)


drain_cancelled = metric(metrics, "cell_drain_cancelled_total")
cancelled_all = metric(metrics, "cell_order_transitions_total", 'to="cancelled"')
if drained_at:
    print(f"  drain:   regions moved in {ops['DRAIN_CALL_MS']} ms; 'drained' after {(drained_at - start) / 1000:.1f} s")
else:
    last = cell(cells_log[-1], 1)
    print(f"  drain:   regions moved in {ops['DRAIN_CALL_MS']} ms; NOT drained by the end (state {last.get('state')}, {json.dumps(last.get('drain'))})")
if first:
    print(f"           first progress seen: {json.dumps(first)}")
print(f"           orders left at most {peak}; cancelled with reason cell_drained: {drain_cancelled} "
      f"(all cancellations on berlin: {cancelled_all})")
res["drain"] = {"drained_after_ms": drained_at - start if drained_at else None, "regions_moved_ms": ops["DRAIN_CALL_MS"],
                "peak_orders_left": peak, "cancelled_cell_drained": drain_cancelled}
r0, r1 = ops["RESTART_START"], ops["RESTART_READY"]
# How the router saw munich around the restart.
states = []
for s in cells_log:
    if r0 - 2000 <= s["t"] <= r1 + 5000:
        st = "up" if cell(s, 2).get("up") else "down"
        if not states or states[-1][1] != st:
            states.append((s["t"] - r0, st))
print(f"  restart: SIGTERM → exit {ops['RESTART_STOP_MS']} ms, start → READY {ops['RESTART_START_MS']} ms, total {ops['RESTART_MS']} ms")
print("           the router's health view of munich (ms from SIGTERM, polled each second): "
      + ", ".join(f"{t:+d} {st}" for t, st in states))
res["restart_ms"] = ops["RESTART_MS"]

# --- drivers -------------------------------------------------------------------------------
print()
ds = json.load(open(path("drivesim.json")))
ev = ds["reconnect"]["events"]
after = sorted(e[1] for e in ev if e[2] == "lost" and e[0] >= r0)
handovers = sorted(e[1] for e in ev if e[2] == "handover")
print(f"drivers ({ds['drivers']}): delivered {ds['delivered']}, assigned {ds['assigned']}, offers {ds['offers']} "
      f"(declined {ds['declined']}), cancelled {ds['cancelled']}, handovers {ds['handovers']}, "
      f"accepted offers found assigned after a reconnect {ds.get('jobs_resumed', 0)}, given up {ds['jobs_forgotten']}, unacknowledged progress sent again {ds.get('resent', 0)}, errors {ds['errors']} (last: {ds['last_error'][:160]})")
if after:
    print(f"  reconnect after the restart (connection lost → next HelloAck): {len(after)} drivers, "
          f"p50 {pct(after, .5)} ms, p99 {pct(after, .99)} ms, max {after[-1]} ms")
else:
    print("  reconnect after the restart: no driver lost its connection")
if handovers:
    print(f"  handover (drain/move → connected to the new cell): {len(handovers)}, p50 {pct(handovers, .5)} ms, "
          f"p99 {pct(handovers, .99)} ms, max {handovers[-1]} ms")
res["drivers"] = {"reconnect_after_restart": {"n": len(after), "p50_ms": pct(after, .5), "p99_ms": pct(after, .99),
                                              "max_ms": after[-1] if after else None},
                  "delivered": ds["delivered"], "jobs_forgotten": ds["jobs_forgotten"]}

# --- trackers ------------------------------------------------------------------------------
if os.path.exists(path("trackers.json")):
    tr = json.load(open(path("trackers.json")))["trackers"]
    gaps = sorted(r["close_to_snapshot_ms"] for t in tr for r in t["reconnects"])
    codes = [c["code"] for t in tr for c in t["closes"]]
    snap_first = all(r["snapshot_first"] for t in tr for r in t["reconnects"])
    print(f"trackers ({len(tr)}, through the router): closes {codes}; resumed {len(gaps)} times, snapshot first: {snap_first}; "
          f"gap close → snapshot p50 {pct(gaps, .5)} ms, p99 {pct(gaps, .99)} ms, max {gaps[-1] if gaps else None} ms; "
          f"failed reopen attempts {sum(t['open_failures'] for t in tr)}")
    res["trackers"] = {"closes": codes, "gap_p99_ms": pct(gaps, .99), "snapshot_first": snap_first}
else:
    print("trackers: not run")

# --- the end -------------------------------------------------------------------------------
end = json.load(open(path("cells-end.json")))
print()
print("at the end: " + "; ".join(
    f"cell {c['id']} ({c.get('name')}) {c.get('state')}, active orders {c.get('active_orders')}, drivers {c.get('drivers_online')}"
    for c in end["cells"]))
stranded = sum(c.get("active_orders", 0) for c in end["cells"])
print(f"orders stranded (still active at the end, cells' status): {stranded}")
if os.path.exists(path("trackers.txt")):
    failed = [l.strip() for l in open(path("trackers.txt")) if l.startswith("cancelling")]
    if failed:
        print(f"  of which the trackers' own orders whose cancel failed: {len(failed)}; first: {failed[0][:200]}")
        res["tracker_cancel_failed"] = len(failed)
res["stranded"] = stranded
json.dump(res, open(path("ops-summary.json"), "w"), indent=1)
