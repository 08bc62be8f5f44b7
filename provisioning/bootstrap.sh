#!/usr/bin/env bash
# Bootstrap a checkout of madoguchi on a fresh Debian/Ubuntu that only has python3 (>= 3.11).
#
#   bash provisioning/bootstrap.sh demo [args]         run `madoguchi demo` with simulated devices
#   bash provisioning/bootstrap.sh test [pytest args]  install test services, run the test suite
#
# Steps: find or install uv (PATH, then .tools/bin/uv, else a .tools venv with pinned uv),
# in test mode install the missing system packages, `uv sync --frozen --extra dev` into .venv,
# then exec the command. Runs as root or via sudo; without either, system packages are skipped
# with a warning (tests needing them skip, or fail under MADOGUCHI_STRICT=1).
set -euo pipefail

# System packages the test suite needs. Later issues extend this list.
TEST_SYSTEM_PACKAGES="sqlite3 mosquitto postgresql chromium socat espeak-ng libespeak-ng1 fonts-noto-cjk libzbar0 sox wrk softhsm2 nginx systemd clamav clamav-daemon"
UV_VERSION="0.13.9"
UV_MIN_VERSION="0.5.0" # an older uv on PATH cannot be trusted with this uv.lock

log() { printf '[bootstrap] %s\n' "$*" >&2; }
warn() { printf '[bootstrap] WARNING: %s\n' "$*" >&2; }
die() {
    printf '[bootstrap] ERROR: %s\n' "$*" >&2
    exit 1
}

usage() {
    cat >&2 <<'EOF'
usage: bash provisioning/bootstrap.sh demo [madoguchi demo args]
       bash provisioning/bootstrap.sh test [pytest args]
EOF
    exit 2
}

[ $# -ge 1 ] || usage
MODE="$1"
shift
case "$MODE" in
    demo | test) ;;
    -h | --help) usage ;;
    *) usage ;;
esac

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

# --- privileges ------------------------------------------------------------------------------
SUDO=""
CAN_APT=1
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        CAN_APT=0
    fi
fi
command -v apt-get >/dev/null 2>&1 || CAN_APT=0

apt_update_once() {
    if [ "${MADOGUCHI_APT_UPDATED:-0}" != "1" ]; then
        log "apt-get update"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        MADOGUCHI_APT_UPDATED=1
        export MADOGUCHI_APT_UPDATED
    fi
}

apt_install() {
    apt_update_once
    log "installing system packages: $*"
    $SUDO env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "$@" </dev/null
}

is_installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'
}

# --- python3 >= 3.11 -------------------------------------------------------------------------
find_python() {
    local cand
    for cand in python3 python3.13 python3.12 python3.11 /usr/bin/python3; do
        if command -v "$cand" >/dev/null 2>&1 &&
            "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$cand"
            return 0
        fi
    done
    return 1
}

PYTHON="$(find_python)" || die "no python3 >= 3.11 found on PATH (install python3.11 or newer)"

# --- uv --------------------------------------------------------------------------------------
version_ge() { # version_ge A B: A >= B
    [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

find_uv() {
    local uv ver
    if uv="$(command -v uv 2>/dev/null)"; then
        ver="$("$uv" --version 2>/dev/null | awk '{print $2}')"
        if [ -n "$ver" ] && version_ge "$ver" "$UV_MIN_VERSION"; then
            echo "$uv"
            return 0
        fi
        log "ignoring $uv (version ${ver:-unknown} < $UV_MIN_VERSION)"
    fi
    if [ -x "$REPO_ROOT/.tools/bin/uv" ]; then
        echo "$REPO_ROOT/.tools/bin/uv"
        return 0
    fi
    return 1
}

install_uv() {
    log "creating .tools venv for uv==$UV_VERSION"
    if ! "$PYTHON" -m venv .tools >/dev/null 2>&1; then
        rm -rf .tools
        [ "$CAN_APT" = 1 ] || die "'$PYTHON -m venv' failed and apt-get is unavailable \
(not root, no sudo): install python3-venv or uv (https://docs.astral.sh/uv/) and retry"
        apt_install python3-venv
        "$PYTHON" -m venv .tools || die "'$PYTHON -m venv' still fails after installing python3-venv"
    fi
    .tools/bin/pip install -q --disable-pip-version-check "uv==$UV_VERSION" ||
        die "could not install uv==$UV_VERSION into .tools"
}

UV="$(find_uv)" || {
    install_uv
    UV="$REPO_ROOT/.tools/bin/uv"
}
log "using $("$UV" --version) at $UV, python $("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"

# --- system packages for the tests -----------------------------------------------------------
if [ "$MODE" = test ]; then
    missing=()
    if command -v dpkg >/dev/null 2>&1; then
        for pkg in $TEST_SYSTEM_PACKAGES; do
            is_installed "$pkg" || missing+=("$pkg")
        done
    else
        warn "dpkg not found: cannot check system packages ($TEST_SYSTEM_PACKAGES)"
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$CAN_APT" = 1 ]; then
            if ! apt_install "${missing[@]}"; then
                # one unknown package (e.g. no `chromium` on this release) must not block the rest
                failed=()
                for pkg in "${missing[@]}"; do
                    apt_install "$pkg" || failed+=("$pkg")
                done
                [ ${#failed[@]} -eq 0 ] ||
                    warn "could not install: ${failed[*]}; tests needing them will skip (or fail when MADOGUCHI_STRICT=1)"
            fi
        else
            warn "not root and no sudo: cannot install ${missing[*]}; tests needing them will skip (or fail when MADOGUCHI_STRICT=1)"
        fi
    else
        log "system packages present: $TEST_SYSTEM_PACKAGES"
    fi
fi

# --- project environment ---------------------------------------------------------------------
export UV_PYTHON_DOWNLOADS=never
export UV_PYTHON="$PYTHON"
log "uv sync --frozen --extra dev --compile-bytecode"
# bytecode written once here: where PYTHONDONTWRITEBYTECODE is set, every process would compile
# ~1,700 modules from source at each start (1.1 s of an edge's 2.2 s start-up)
"$UV" sync --frozen --extra dev --quiet --compile-bytecode
.venv/bin/python -m compileall -q -j 0 edge hub >/dev/null || warn "could not compile edge/ and hub/ to bytecode"

case "$MODE" in
    demo)
        log "starting madoguchi demo"
        exec .venv/bin/madoguchi demo "$@"
        ;;
    test)
        log "running pytest $*"
        exec .venv/bin/pytest "$@"
        ;;
esac
