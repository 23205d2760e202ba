# Shared by the bench scripts (sourced): binaries, PIDS killed on exit, field/wait_ready for
# READY lines; start_cell_and_router starts one fresh demo cell with a router in front of it,
# in $OUT, and sets CELL_HTTP, ROUTER_HTTP, QUIC, CA, CELLPID, ROUTERPID. Optional: CELL_TOML (a
# cell config file) and ROUTER_TOML_EXTRA (TOML appended to the router's config).
# Binaries: BIN_DIR (target/release), or each of CELL, ROUTER, L set on its own (e.g.
# BIN_DIR=target/debug for a quick functional check; debug figures measure nothing).
BIN_DIR=${BIN_DIR:-target/release}
CELL=${CELL:-$BIN_DIR/cell}; ROUTER=${ROUTER:-$BIN_DIR/router}; L=${L:-$BIN_DIR/loadgen}
SECRET=dev-only-secret-change-me
PIDS=()
trap 'kill ${PIDS[@]+"${PIDS[@]}"} 2>/dev/null; wait 2>/dev/null' EXIT
field() { grep '^READY' "$1" | sed 's/^READY //' | python3 -c "import json,sys; print(json.load(sys.stdin)[\"$2\"])"; }
wait_ready() { for _ in $(seq 1 240); do grep -q '^READY' "$1" 2>/dev/null && return; sleep 0.5; done; echo "no READY in $1"; exit 1; }

start_cell_and_router() {
  mkdir -p "$OUT"
  local cfg=(); [ -n "${CELL_TOML:-}" ] && cfg=(--config "$CELL_TOML")
  "$CELL" run ${cfg[@]+"${cfg[@]}"} --demo --listen 127.0.0.1:0 --quic-listen 127.0.0.1:0 --data-dir "$OUT/cell" >"$OUT/cell.ready" 2>"$OUT/cell.log" &
  CELLPID=$!; PIDS+=("$CELLPID")
  # Load from one IP and a few tokens: the default edge limits would refuse it. Set high
  # rather than off, so the limiter still runs on every request.
  printf '[limits]\nper_ip_rps = 10000000\nper_ip_burst = 10000000\nper_token_rps = 10000000\nper_token_burst = 10000000\n' >"$OUT/router.toml"
  printf '%s\n' "${ROUTER_TOML_EXTRA:-}" >>"$OUT/router.toml"
  "$ROUTER" run --demo --config "$OUT/router.toml" --listen 127.0.0.1:0 --data-dir "$OUT/router" >"$OUT/router.ready" 2>"$OUT/router.log" &
  ROUTERPID=$!; PIDS+=("$ROUTERPID")
  wait_ready "$OUT/cell.ready"; wait_ready "$OUT/router.ready"
  CELL_HTTP=$(field "$OUT/cell.ready" http); ROUTER_HTTP=$(field "$OUT/router.ready" http)
  QUIC=$(field "$OUT/cell.ready" quic); CA=$(field "$OUT/cell.ready" quic_ca)
  "$ROUTER" cells add "$CELL_HTTP" --router "http://$ROUTER_HTTP" >/dev/null
}

# The demo `clock_offset_ms` that makes the Berlin demo metro's clock read LOCAL_HOUR:00 today
# (UTC+1, as in winter): how many demo restaurants are open, and so how many searches match and
# how many restaurants take orders, depends on the local time. Prints 0 without LOCAL_HOUR.
local_hour_offset_ms() {
  if [ -n "${LOCAL_HOUR:-}" ]; then
    echo $(( ($(date -u -d "today $(( (LOCAL_HOUR + 23) % 24 )):00" +%s) - $(date -u +%s)) * 1000 ))
  else
    echo 0
  fi
}
