#!/usr/bin/env bash
# The two commands of the README:
#   ./dev.sh serve [mcpframe serve options]   start the proxy (no --config: embedded cache)
#   ./dev.sh test  [pytest options]           install test dependencies and run the whole suite
# Each installs what it needs: a virtualenv in .venv with the package, and for the tests the
# Debian packages of the real servers the suite talks to (memcached, nutcracker, memcaslap).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=.venv

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --upgrade pip
    fi
}

ensure_debs() {
    local missing=()
    command -v memcached >/dev/null || missing+=(memcached)
    command -v nutcracker >/dev/null || [ -x /usr/sbin/nutcracker ] || missing+=(nutcracker)
    command -v memcaslap >/dev/null || missing+=(libmemcached-tools)
    if [ ${#missing[@]} -gt 0 ]; then
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo=sudo
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

cmd=${1:-}
shift || true
case "$cmd" in
    serve)
        ensure_venv
        "$VENV/bin/pip" install --quiet -e .
        exec "$VENV/bin/mcpframe" serve "$@"
        ;;
    test)
        ensure_debs
        ensure_venv
        "$VENV/bin/pip" install --quiet -e '.[test]'
        "$VENV/bin/ruff" check .
        "$VENV/bin/ruff" format --check .
        "$VENV/bin/mypy"
        exec "$VENV/bin/pytest" "$@"
        ;;
    *)
        echo "usage: ./dev.sh serve [options] | ./dev.sh test [pytest options]" >&2
        exit 2
        ;;
esac
