#!/usr/bin/env bash
# Create the Python virtualenvs used by the integration tests (idempotent).
#
#   .venv/hub2    huggingface_hub==2.4.0   (+ safetensors, numpy for mmap loading tests)
#   .venv/hub036  huggingface_hub==0.36.2  (newest 0.36.x; old resume / temp-file naming)
#
# Usage: scripts/setup-python.sh            # both venvs
#        PYTHON=/usr/bin/python3 scripts/setup-python.sh
#        HFCACHEFS_PY_EXTRAS=0 scripts/setup-python.sh   # skip safetensors/numpy
#
# Packages are installed with pip by name only, from whatever index pip is configured with.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_ROOT="$REPO/.venv"
PYTHON="${PYTHON:-python3}"
EXTRAS="${HFCACHEFS_PY_EXTRAS:-1}"

HUB2_VERSION="2.4.0"
HUB036_VERSION="0.36.2"

log() { echo "[setup-python] $*" >&2; }

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    log "no $PYTHON found; installing python3 with apt"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3
fi

# Can this interpreter build a venv with pip in it? (Debian's system python needs python3-venv.)
venv_works() {
    local probe
    probe="$(mktemp -d)"
    if "$PYTHON" -m venv "$probe/v" >/dev/null 2>&1 && [ -x "$probe/v/bin/pip" ]; then
        rm -rf "$probe"
        return 0
    fi
    rm -rf "$probe"
    return 1
}

ensure_venv_support() {
    if venv_works; then
        return 0
    fi
    log "'$PYTHON -m venv' cannot create a venv with pip; installing python3-venv with apt"
    local minor
    minor="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python${minor}-venv"
    if ! venv_works; then
        log "still cannot create a venv with $PYTHON"
        exit 1
    fi
}

# installed_version VENV DIST -> prints the installed version or nothing
installed_version() {
    local venv="$1" dist="$2"
    [ -x "$venv/bin/python" ] || return 0
    "$venv/bin/python" - "$dist" <<'EOF' 2>/dev/null || true
import sys
from importlib import metadata
try:
    print(metadata.version(sys.argv[1]))
except metadata.PackageNotFoundError:
    pass
EOF
}

# make_venv NAME HUB_VERSION [extra requirement...]
make_venv() {
    local name="$1" hubver="$2"
    shift 2
    local venv="$VENV_ROOT/$name"
    local have
    have="$(installed_version "$venv" huggingface_hub)"
    local need_extras=0
    if [ "$#" -gt 0 ]; then
        local req dist
        for req in "$@"; do
            dist="${req%%[<>=!~]*}"
            if [ -z "$(installed_version "$venv" "$dist")" ]; then
                need_extras=1
            fi
        done
    fi
    if [ "$have" = "$hubver" ] && [ "$need_extras" = 0 ]; then
        log "$name: huggingface_hub $have already installed"
        return 0
    fi
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1 \
        || [ ! -x "$venv/bin/pip" ]; then
        ensure_venv_support
        log "$name: creating venv"
        rm -rf "$venv"
        "$PYTHON" -m venv "$venv"
    fi
    log "$name: installing huggingface_hub==$hubver $*"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "huggingface_hub==$hubver" "$@"
    have="$(installed_version "$venv" huggingface_hub)"
    if [ "$have" != "$hubver" ]; then
        log "$name: expected huggingface_hub $hubver, got '$have'"
        exit 1
    fi
}

mkdir -p "$VENV_ROOT"

hub2_extras=()
if [ "$EXTRAS" = "1" ]; then
    hub2_extras=("safetensors>=0.4,<1" "numpy>=1.24")
fi
make_venv hub2 "$HUB2_VERSION" "${hub2_extras[@]}"
make_venv hub036 "$HUB036_VERSION"

# Keep the venvs out of git.
GITIGNORE="$REPO/.gitignore"
if ! { [ -f "$GITIGNORE" ] && grep -qxF '.venv/' "$GITIGNORE"; }; then
    if [ -s "$GITIGNORE" ] && [ "$(tail -c1 "$GITIGNORE" | od -An -c | tr -d ' ')" != '\n' ]; then
        echo >>"$GITIGNORE"
    fi
    echo '.venv/' >>"$GITIGNORE"
fi

echo "HUB2_PYTHON=$VENV_ROOT/hub2/bin/python"
echo "HUB036_PYTHON=$VENV_ROOT/hub036/bin/python"
