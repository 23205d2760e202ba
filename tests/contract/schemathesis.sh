#!/usr/bin/env bash
# The API contract, checked from outside: Schemathesis (pinned, from PyPI, installed into
# target/contract/venv on first use) generates requests from the cell's OpenAPI document and
# runs every check against a started cell and against a router in front of it, once per
# role (customer, restaurant, driver, admin token; `ROLES=support` adds the support role's). Any failure or server error fails the run.
#
#   tests/contract/schemathesis.sh                 # both targets, every role
#   MAX_EXAMPLES=5 TARGETS=cell ROLES=customer tests/contract/schemathesis.sh
#
# Debug binaries (built here if missing or stale); reports in target/contract/report/.
set -euo pipefail
cd "$(dirname "$0")/../.."

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES=${MAX_EXAMPLES:-20}
TARGETS=${TARGETS:-"cell router"}
ROLES=${ROLES:-"customer restaurant driver admin"}
PHASES=${PHASES:-examples,coverage,fuzzing,stateful}
ROOT=$PWD
OUT=target/contract
VENV=$OUT/venv
REPORT=$OUT/report
start=$(date +%s)
log() { printf '\033[1m==> %s (t+%ss)\033[0m\n' "$*" "$(($(date +%s) - start))" >&2; }

# --- tools -----------------------------------------------------------------------------------
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    # A bare CI image may lack Python or its venv module (Debian splits it out).
    command -v apt-get >/dev/null 2>&1 || { echo "need python3 with venv (3.9+)" >&2; exit 1; }
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null) \
      || { echo "could not install python3-venv" >&2; exit 1; }
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
log "building debug binaries: cell, router"
cargo build --quiet -p cell -p router --bin cell --bin router
CELL=target/debug/cell
ROUTER=target/debug/router

# --- a cell and a router ---------------------------------------------------------------------
WORK=$(mktemp -d -t contract-XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# A small demo city: enough restaurants for searches to find some, quick to seed.
cat >"$WORK/cell.toml" <<'TOML'
[demo]
enabled = true
restaurants = 200
radius_km = 3.0

# Per-user limits off for the same reason as the router's below: Schemathesis places
# hundreds of orders with one customer token, in bursts.
[limits]
orders_per_window = 0
per_user_rps = 0
TOML
# Rate limits off: Schemathesis sends bursts, and a 429 would hide what it tests.
cat >"$WORK/router.toml" <<'TOML'
[demo]
enabled = true

[health]
interval_ms = 200
timeout_ms = 500
failure_threshold = 2

[limits]
per_ip_rps = 0
per_token_rps = 0
TOML

# spawn NAME CMD...: stdout to NAME.out, stderr to NAME.log; waits for the READY line and
# prints its JSON.
spawn() {
  local name=$1
  shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" &
  PIDS+=("$!")
  for _ in $(seq 1 240); do
    if grep -q '^READY ' "$WORK/$name.out" 2>/dev/null; then
      grep '^READY ' "$WORK/$name.out" | head -1 | sed 's/^READY //'
      return
    fi
    kill -0 "$!" 2>/dev/null || break
    sleep 0.25
  done
  echo "$name did not start; its log:" >&2
  tail -30 "$WORK/$name.log" >&2
  exit 1
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }

log "starting a cell and a router"
CELL_HTTP=$(spawn cell "$CELL" run --config "$WORK/cell.toml" --listen 127.0.0.1:0 \
  --quic-listen 127.0.0.1:0 --data-dir "$WORK/cell-data" | field http)
ROUTER_HTTP=$(spawn router "$ROUTER" run --config "$WORK/router.toml" --listen 127.0.0.1:0 \
  --data-dir "$WORK/router-data" | field http)
ROUTER_URL="http://$ROUTER_HTTP" "$ROUTER" cells add "$CELL_HTTP" --config "$WORK/router.toml" >/dev/null
for _ in $(seq 1 100); do
  ROUTER_URL="http://$ROUTER_HTTP" "$ROUTER" cells list --config "$WORK/router.toml" 2>/dev/null \
    | grep -q '"up"' && break
  sleep 0.1
done

token() {
  "$ROUTER" token --config "$WORK/router.toml" --role "$1" --sub "$2" ${3:+--home "$3"}
}
# The restaurant token is for a real restaurant, so its own endpoints answer beyond 403/404.
# Turns every fault mode of the cell's payment sandbox off (PUT .../sandbox/faults as admin).
reset_sandbox_faults() {
  python3 - "http://$CELL_HTTP/api/v1/admin/payments/sandbox/faults" "${TOKENS[admin]}" <<'PY'
import sys, urllib.request
body = b'{"fail_percent": 0, "timeout": false, "down_for_ms": 0, "decline_after_authorize": false}'
req = urllib.request.Request(sys.argv[1], data=body, method="PUT",
    headers={"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"})
urllib.request.urlopen(req).read()
PY
}

# get PATH [TOKEN]: the cell's answer (Python, not curl: one tool fewer to install).
get() {
  python3 - "http://$CELL_HTTP$1" "${2:-}" <<'PY'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1])
if sys.argv[2]:
    req.add_header("Authorization", "Bearer " + sys.argv[2])
sys.stdout.write(urllib.request.urlopen(req, timeout=10).read().decode())
PY
}
RESTAURANT_ID=$(get "/api/v1/restaurants?lat=52.52&lng=13.405&radius=3km&page_size=1" "$(token customer 1 1)" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["restaurants"][0]["id"])')
declare -A TOKENS=(
  [customer]=$(token customer 4242 1)
  [restaurant]=$(token restaurant "$RESTAURANT_ID" 1)
  [driver]=$(token driver 777 1)
  [admin]=$(token admin 0)
  [support]=$(token support 0)
)
get /api/v1/openapi.json >"$OUT/openapi.json"

# --- runs ------------------------------------------------------------------------------------
rm -rf "$REPORT"
mkdir -p "$REPORT"
declare -A RESULT
status=0
for target in $TARGETS; do
  case $target in
    cell) url="http://$CELL_HTTP"; exclude=() ;;
    # The router answers the public API; the cell's admin API is for the router alone. A
    # customer's export and erase are served by the cells for now: the router does not route
    # them yet (a customer's orders can span cells, so they need a fan-out; issue 20).
    router) url="http://$ROUTER_HTTP"
      exclude=(--exclude-path-regex '^/api/v1/(admin/|customers/me)') ;;
    *) echo "unknown target $target" >&2; exit 2 ;;
  esac
  for role in $ROLES; do
    name="$target-$role"
    log "schemathesis: $name"
    rc=0
    # From target/contract, where Schemathesis keeps its crash cache (.schemathesis/).
    (cd "$OUT" && venv/bin/schemathesis --config-file "$ROOT/tests/contract/schemathesis.toml" run openapi.json \
      --url "$url" -H "Authorization: Bearer ${TOKENS[$role]}" "${exclude[@]}" \
      --phases "$PHASES" --max-examples "$MAX_EXAMPLES" --seed 21 --generation-database none \
      --workers 1 --no-color --report junit,ndjson --report-dir "report/$name") \
      >"$REPORT/$name.txt" 2>&1 || rc=$?
    # The admin run fuzzes the payment sandbox's fault endpoint too; later runs get a healthy
    # provider again.
    if [ "$role" = admin ] && [ "$target" = cell ]; then reset_sandbox_faults; fi
    failures=$(grep -Eo '[0-9]+ failures?' "$REPORT/$name.txt" | tail -1 | grep -Eo '[0-9]+' || echo 0)
    server=$(grep -c 'Server error' "$REPORT/$name.txt" || true)
    errors=$(grep -Eo '[0-9]+ errors?' "$REPORT/$name.txt" | tail -1 | grep -Eo '[0-9]+' || echo 0)
    RESULT[$name]="exit $rc, $failures failures, $server server errors, $errors errors"
    [ "$rc" = 0 ] || status=1
    [ "$rc" = 0 ] || tail -40 "$REPORT/$name.txt"
  done
done

log "summary (logs: $REPORT/*.txt)"
for target in $TARGETS; do
  for role in $ROLES; do
    printf '  %-18s %s\n' "$target-$role" "${RESULT[$target-$role]}"
  done
done
exit $status
