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

log() { printf 'test.sh: %s\n' "$*" >&2; }

# shellcheck source=scripts/venv.sh
source "$root/scripts/venv.sh"
venv_requirements "$root/scripts/requirements-test.txt" moto_server

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
