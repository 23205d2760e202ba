#!/usr/bin/env python3
"""Trackers across a cell restart, for ops.sh: places N orders through the router (search
near a point, menu, place with an Idempotency-Key; the restaurant never accepts, so each
order stays live and trackable for the whole run), opens one tracking WebSocket per order
through the router, and reconnects at once whenever the socket closes. Until STOP_FILE
exists; then cancels its orders (reason "ops bench tracker done") and writes a JSON report:
per tracker the close codes seen, whether the first message after each reconnect was a
snapshot, and the gap from the close to that snapshot (the tracker gap: a pending order
sends nothing else, so the close and the snapshot are the messages around the restart). Stdlib only (no WebSocket package on the machine): a minimal RFC 6455 client,
plain ws:// only.

usage: ops_trackers.py ROUTER_HOST:PORT CUSTOMER_TOKEN LAT,LNG N STOP_FILE OUT_JSON
"""
import base64, json, os, random, socket, struct, sys, threading, time, urllib.error, urllib.request

router, token, point, n, stop_file, out = sys.argv[1:7]
lat, lng = (float(x) for x in point.split(","))
n = int(n)
base = f"http://{router}"


def api(method, path, body=None, headers=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def place(i):
    """One order at a random restaurant near the point; returns its id."""
    rng = random.Random(i)
    page = api("GET", f"/api/v1/restaurants?lat={lat}&lng={lng}&radius=3km")
    hits = page["restaurants"]
    for _ in range(20):
        rid = rng.choice(hits)["id"]
        menu = api("GET", f"/api/v1/restaurants/{rid}/menu")
        items = [it for c in menu["categories"] for it in c["items"] if it.get("available")]
        if not items:
            continue
        it = items[0]
        opts = [o["name"] for g in it.get("customizations", []) for o in g["options"][: g.get("min", 0)]]
        r = menu["restaurant"]
        body = {"restaurant_id": rid,
                "items": [{"item_id": it["id"], "quantity": 1, "customizations": opts}],
                "delivery_address": {"lat": r["lat"] + 0.002, "lng": r["lng"], "formatted": "ops tracker"},
                "payment_method_id": "pm_card_visa"}
        return api("POST", "/api/v1/orders", body, {"Idempotency-Key": f"ops-tracker-{os.getpid()}-{i}-{rid}"})["order_id"]
    raise RuntimeError("no restaurant with an available item")


class Closed(Exception):
    def __init__(self, code):
        self.code = code


def ws_open(order):
    host, port = router.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws/orders/{order}/track?token={token} HTTP/1.1\r\nHost: {router}\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("closed during upgrade")
        head += chunk
    line = head.split(b"\r\n", 1)[0]
    if b" 101 " not in line:
        s.close()
        raise OSError(f"upgrade refused: {line.decode(errors='replace')}")
    return s, bytearray(head.split(b"\r\n\r\n", 1)[1])


def read_exact(s, buf, k):
    while len(buf) < k:
        chunk = s.recv(65536)
        if not chunk:
            raise Closed(None)
        buf += chunk
    out = bytes(buf[:k])
    del buf[:k]
    return out


def send_frame(s, opcode, payload=b""):
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    s.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)


def next_message(s, buf):
    """The next text message (str); raises Closed(code) on a close frame or EOF."""
    while True:
        b0, b1 = read_exact(s, buf, 2)
        opcode, ln = b0 & 0x0F, b1 & 0x7F
        if ln == 126:
            ln = struct.unpack(">H", read_exact(s, buf, 2))[0]
        elif ln == 127:
            ln = struct.unpack(">Q", read_exact(s, buf, 8))[0]
        payload = read_exact(s, buf, ln)
        if opcode == 0x8:
            code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
            try:
                send_frame(s, 0x8, payload[:2])
            except OSError:
                pass
            raise Closed(code)
        if opcode == 0x9:
            send_frame(s, 0xA, payload)
            continue
        if opcode in (0x1, 0x0):
            return payload.decode()


def track(order, rec):
    closed_at = None
    while not os.path.exists(stop_file):
        try:
            s, buf = ws_open(order)
        except OSError as e:
            rec["open_failures"] += 1
            rec["last_error"] = str(e)
            time.sleep(0.2)
            continue
        s.settimeout(1.0)
        first = True
        try:
            while not os.path.exists(stop_file):
                try:
                    m = next_message(s, buf)
                except socket.timeout:
                    continue
                now = time.time()
                kind = json.loads(m).get("type")
                if first:
                    rec["connects"] += 1
                    if closed_at is not None:
                        rec["reconnects"].append({"close_to_snapshot_ms": round((now - closed_at) * 1000),
                                                  "snapshot_first": kind == "snapshot",
                                                  "at_unix_ms": int(now * 1000)})
                    first = False
                rec["messages"] += 1
                if kind == "snapshot" and m.find('"status":"cancelled"') >= 0:
                    rec["order_ended"] = True
        except Closed as c:
            closed_at = time.time()
            rec["closes"].append({"code": c.code, "at_unix_ms": int(closed_at * 1000)})
        except OSError as e:
            closed_at = time.time()
            rec["closes"].append({"code": None, "error": str(e), "at_unix_ms": int(closed_at * 1000)})
        finally:
            s.close()
        if rec.get("order_ended"):
            break


orders = [place(i) for i in range(n)]
recs = [{"order": o, "connects": 0, "messages": 0, "open_failures": 0, "closes": [], "reconnects": []} for o in orders]
threads = [threading.Thread(target=track, args=(o, r), daemon=True) for o, r in zip(orders, recs)]
for t in threads:
    t.start()
print(f"trackers: {n} on orders {' '.join(orders)}", flush=True)
for t in threads:
    t.join()
for o in orders:
    try:
        api("POST", f"/api/v1/orders/{o}/cancel", {"reason": "ops bench tracker done"},
            {"Idempotency-Key": f"ops-tracker-cancel-{o}"})
    except urllib.error.HTTPError as e:
        print(f"cancelling {o}: {e.code} {e.read()[:300]!r}", flush=True)
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        print(f"cancelling {o}: {e}", flush=True)
json.dump({"trackers": recs}, open(out, "w"), indent=1)
