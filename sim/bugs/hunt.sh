#!/usr/bin/env bash
# The planted-bug hunt. For each patch in sim/bugs/: apply it in a temporary git worktree of
# HEAD (building into the same target dir, so dependencies are not rebuilt), run
# `sim seeds --swarm` from seed 1 until the first failing seed, print how many seeds that took
# and the command that reproduces it, then run the same seeds with the unpatched simulator
# and show they pass. Commit first: the worktree is HEAD.
#
#   sim/bugs/hunt.sh              # up to 300 seeds per bug (HUNT_MAX_SEEDS)
set -euo pipefail
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
target=${CARGO_TARGET_DIR:-$root/target}
max=${HUNT_MAX_SEEDS:-300}
tree=$(mktemp -d /tmp/sim-hunt.XXXXXX)
bins=$(mktemp -d /tmp/sim-hunt-bins.XXXXXX)
cleanup() {
  git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || true
  rm -rf "$bins"
  # The worktree's crates build to the same artifacts as this tree's (cargo's metadata hash
  # does not include the path), and their sources are newer: touch every file a patch
  # changed (and the binary's), so the unpatched code is built again.
  for p in "$root"/sim/bugs/*.patch; do
    sed -n 's|^+++ b/||p' "$p" | while read -r f; do touch "$root/$f"; done
  done
  touch "$root/sim/src/main.rs"
  (cd "$root" && CARGO_TARGET_DIR=$target cargo build --release -q -p sim) || true
}
trap cleanup EXIT
git -C "$root" worktree add -q --detach "$tree" HEAD

echo "building the simulator without any patch"
(cd "$root" && CARGO_TARGET_DIR=$target cargo build --release -q -p sim)
cp "$target/release/sim" "$bins/sim-fixed"

for patch in "$root"/sim/bugs/*.patch; do
  name=$(basename "$patch" .patch)
  echo
  echo "=== $name"
  git -C "$tree" checkout -q -- .
  git -C "$tree" apply "$patch"
  (cd "$tree" && CARGO_TARGET_DIR=$target cargo build --release -q -p sim)
  cp "$target/release/sim" "$bins/sim-$name"
  start=$(date +%s)
  if out=$("$bins/sim-$name" seeds --count "$max" --swarm 2>&1 | tr '\r' '\n'); then
    echo "NOT FOUND in $max seeds ($(( $(date +%s) - start )) s)"
    continue
  fi
  n=$(echo "$out" | sed -n 's/^FAILED after \([0-9]*\) seeds$/\1/p')
  echo "found after $n seeds ($(( $(date +%s) - start )) s)"
  echo "$out" | grep -E '^(SIM_SEED|invariant|reproduce)' || true
  if "$bins/sim-fixed" seeds --count "$n" --swarm >/dev/null 2>&1; then
    echo "without the patch: the same $n seeds pass"
  else
    echo "without the patch: FAILS too (a real bug, not the planted one)"
  fi
done
