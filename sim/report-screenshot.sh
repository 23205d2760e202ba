#!/usr/bin/env bash
# Renders a what-if report (the HTML `sim whatif` or `examples/report_demo.rs` writes) to a PNG
# with headless Chromium, at 1280 px wide, for the README.
#
#   sim/report-screenshot.sh IN.html OUT.png [HEIGHT]
#
# HEIGHT defaults to 1800 px (the table and the five plots). Needs /usr/bin/chromium
# (`apt-get install -y chromium`). The page loads nothing from the network, and Chromium's own
# background fetches are switched off, so this runs offline.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 IN.html OUT.png [HEIGHT]" >&2
  exit 2
fi
in=$1
out=$2
height=${3:-1800}
chromium=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chromium ]]; then
  echo "$chromium not found: apt-get install -y chromium (or set CHROMIUM)" >&2
  exit 1
fi
if [[ ! -f $in ]]; then
  echo "$in: no such file" >&2
  exit 1
fi
in_abs=$(cd "$(dirname "$in")" && pwd)/$(basename "$in")
out_dir=$(cd "$(dirname "$out")" && pwd)
out_abs=$out_dir/$(basename "$out")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT

"$chromium" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --no-first-run --user-data-dir="$profile" \
  --hide-scrollbars --screenshot="$out_abs" --window-size=1280,"$height" \
  "file://$in_abs" >/dev/null 2>&1
if [[ ! -s $out_abs ]]; then
  echo "chromium wrote no screenshot to $out_abs" >&2
  exit 1
fi
echo "wrote $out_abs"
