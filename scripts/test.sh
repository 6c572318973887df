#!/usr/bin/env bash
# The project's test command.
#
#   bash scripts/test.sh [extra arguments for cargo nextest run / cargo test]
#
# Prepares a project-local Python virtualenv (.venv) holding the pinned moto
# server used by the end-to-end tests, then runs the whole workspace's tests.
# Needs only Rust (plus cargo-nextest, optional) and Python 3.11+ with venv/pip.
#
# Examples:
#   bash scripts/test.sh                       # everything
#   bash scripts/test.sh --test e2e            # only the end-to-end test binary
#   bash scripts/test.sh --test e2e --run-ignored only fleet_benchmark --no-capture
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="$root/.venv"
requirements="$root/scripts/requirements-test.txt"
marker="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

log() { printf 'test.sh: %s\n' "$*" >&2; }

if [[ ! -x "$venv/bin/python" ]]; then
    command -v "$python" >/dev/null 2>&1 || { log "$python not found; install Python 3.11 or newer"; exit 1; }
    log "creating virtualenv in .venv"
    "$python" -m venv "$venv"
fi

# Reinstall only when the requirements (or the interpreter) changed since the last
# successful install; a second run costs one hash.
want="$( { sha256sum "$requirements"; "$venv/bin/python" --version; } 2>&1 | sha256sum | cut -d' ' -f1)"
have="$(cat "$marker" 2>/dev/null || true)"
if [[ "$want" != "$have" || ! -x "$venv/bin/moto_server" ]]; then
    log "installing test requirements into .venv (scripts/requirements-test.txt)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --requirement "$requirements"
    printf '%s\n' "$want" >"$marker"
fi

export ECR_FLEET_MOTO_SERVER="$venv/bin/moto_server"

if cargo nextest --version >/dev/null 2>&1; then
    if [[ "${CI:-}" == "true" && -z "${NEXTEST_PROFILE:-}" ]]; then
        export NEXTEST_PROFILE=ci
    fi
    exec cargo nextest run --workspace --no-fail-fast "$@"
else
    log "cargo-nextest not found; falling back to cargo test"
    exec cargo test --workspace "$@"
fi
