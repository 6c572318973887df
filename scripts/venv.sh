# Sourced by the project's scripts (test.sh, lint-templates.sh, release.sh): the project-local
# virtualenv .venv and the pinned Python tools each script needs, installed once. A second run
# costs one hash; a changed requirements file (or interpreter) reinstalls.
#
#   source scripts/venv.sh
#   venv_requirements <requirements file> <executable in .venv/bin that must exist after>
#
# Expects `root` (the project root) to be defined; uses the caller's `log` function if it has
# one.

declare -F log >/dev/null || log() { printf 'venv.sh: %s\n' "$*" >&2; }

venv_requirements() {
    local requirements="$1" needed="$2"
    local venv="$root/.venv"
    local marker="$venv/.$(basename "$requirements" .txt).sha256"
    local python="${PYTHON:-python3}"
    if [[ ! -x "$venv/bin/python" ]]; then
        command -v "$python" >/dev/null 2>&1 || { log "$python not found; install Python 3.11 or newer"; exit 1; }
        log "creating virtualenv in .venv"
        "$python" -m venv "$venv"
    fi
    local want have
    want="$( { sha256sum "$requirements"; "$venv/bin/python" --version; } 2>&1 | sha256sum | cut -d' ' -f1)"
    have="$(cat "$marker" 2>/dev/null || true)"
    if [[ "$want" != "$have" || ! -x "$venv/bin/$needed" ]]; then
        log "installing $(basename "$requirements") into .venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --requirement "$requirements"
        printf '%s\n' "$want" >"$marker"
    fi
}
