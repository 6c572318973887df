#!/usr/bin/env bash
# Prepares the fleet benchmark's own Python virtualenv (.venv-bench) with the tools it
# measures ecr-fleet against: Cloud Custodian (c7n, c7n-org) and boto3 for the plain loop
# in scripts/bench/boto3_loop.py. Kept apart from the test .venv so that moto's and
# c7n's dependency pins never fight.
#
#   bash scripts/bench-setup.sh        # prints the virtualenv's path on stdout
#
# The benchmark (tests/e2e/bench.rs) runs this itself when ECR_FLEET_BENCH_VENV is unset.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${ECR_FLEET_BENCH_VENV:-$root/.venv-bench}"
requirements="$root/scripts/requirements-bench.txt"
marker="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

log() { printf 'bench-setup.sh: %s\n' "$*" >&2; }

if [[ ! -x "$venv/bin/python" ]]; then
    command -v "$python" >/dev/null 2>&1 || { log "$python not found; install Python 3.11 or newer"; exit 1; }
    log "creating virtualenv in $venv"
    "$python" -m venv "$venv"
fi

# Reinstall only when the requirements (or the interpreter) changed.
want="$( { sha256sum "$requirements"; "$venv/bin/python" --version; } 2>&1 | sha256sum | cut -d' ' -f1)"
have="$(cat "$marker" 2>/dev/null || true)"
if [[ "$want" != "$have" || ! -x "$venv/bin/c7n-org" ]]; then
    log "installing benchmark requirements into $venv (scripts/requirements-bench.txt)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --requirement "$requirements" >&2
    printf '%s\n' "$want" >"$marker"
fi

printf '%s\n' "$venv"
