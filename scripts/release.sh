#!/usr/bin/env bash
# Builds the release artifacts of ecr-fleet for Linux x86_64.
#
#   bash scripts/release.sh                 # build, check, package into dist/
#   bash scripts/release.sh --check FILE    # only check FILE's glibc needs (and strip, arch)
#
# The binary is built with cargo-zigbuild for x86_64-unknown-linux-gnu.2.26: it links against
# glibc symbols no newer than 2.26, so it runs on Amazon Linux 2 (the oldest CodeBuild Linux
# image family) and every newer distribution. cargo-zigbuild and zig (the `ziglang` package)
# come from PyPI into the project-local virtualenv .venv (scripts/requirements-release.txt);
# nothing is installed system-wide and no rustup target is needed.
#
# Output, in dist/ (git-ignored):
#   ecr-fleet-<version>-x86_64-unknown-linux-gnu            the stripped binary
#   ecr-fleet-<version>-x86_64-unknown-linux-gnu.tar.gz     the binary, LICENSE and README.md
#   *.sha256                                                 `sha256sum -c` files for both
#
# The script fails when the binary needs a GLIBC_ symbol version above 2.26, is not stripped,
# is not an x86-64 executable, or does not run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

triple="x86_64-unknown-linux-gnu"
max_glibc="2.26"

log() { printf 'release.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Prints the highest GLIBC_x.y version FILE needs, or nothing for a binary without glibc
# symbol versions (static, musl).
highest_glibc() {
    readelf --wide --version-info "$1" \
        | grep -oE 'Name: GLIBC_[0-9]+(\.[0-9]+)+' \
        | sed 's/^Name: GLIBC_//' \
        | sort -V | tail -n 1
}

# Fails unless FILE is a stripped x86-64 ELF executable whose glibc needs stay at or below
# $max_glibc.
check_binary() {
    local file="$1" need
    [[ -f "$file" ]] || die "$file: no such file"
    readelf --file-header "$file" 2>/dev/null | grep -q 'Machine:.*X86-64' \
        || die "$file: not an x86-64 ELF file"
    if readelf --wide --section-headers "$file" | grep -qE '\] \.symtab '; then
        die "$file: not stripped (has a .symtab section)"
    fi
    need="$(highest_glibc "$file")"
    if [[ -z "$need" ]]; then
        log "$file: needs no versioned glibc symbols"
    elif [[ "$(printf '%s\n%s\n' "$need" "$max_glibc" | sort -V | tail -n 1)" != "$max_glibc" ]]; then
        die "$file: needs GLIBC_$need, above the supported GLIBC_$max_glibc (Amazon Linux 2)"
    else
        log "$file: highest glibc symbol version needed: GLIBC_$need (limit $max_glibc)"
    fi
}

if [[ "${1:-}" == "--check" ]]; then
    [[ $# -eq 2 ]] || die "usage: $0 --check FILE"
    check_binary "$2"
    exit 0
fi
[[ $# -eq 0 ]] || die "usage: $0 [--check FILE]"

# --- tools, installed once into .venv ------------------------------------------------------
venv="$root/.venv"
requirements="$root/scripts/requirements-release.txt"
marker="$venv/.requirements-release.sha256"
python="${PYTHON:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
    command -v "$python" >/dev/null 2>&1 || die "$python not found; install Python 3.11 or newer"
    log "creating virtualenv in .venv"
    "$python" -m venv "$venv"
fi
want="$( { sha256sum "$requirements"; "$venv/bin/python" --version; } 2>&1 | sha256sum | cut -d' ' -f1)"
have="$(cat "$marker" 2>/dev/null || true)"
if [[ "$want" != "$have" || ! -x "$venv/bin/cargo-zigbuild" ]]; then
    log "installing release tools into .venv (scripts/requirements-release.txt)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --requirement "$requirements"
    printf '%s\n' "$want" >"$marker"
fi
# cargo-zigbuild finds zig through `python -m ziglang` when no `zig` is on PATH; putting the
# venv first makes it use the pinned one.
export PATH="$venv/bin:$PATH"

version="$(cargo pkgid --quiet -p ecr-fleet | sed -E 's/.*[#@]//')"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || die "cannot read the package version (got '$version')"
name="ecr-fleet-$version-$triple"

# --- build ----------------------------------------------------------------------------------
log "building $name (cargo-zigbuild $(cargo-zigbuild --version | awk '{print $NF}'), zig $(python -m ziglang version))"
start=$(date +%s)
cargo zigbuild --locked --release -p ecr-fleet --bin ecr-fleet --target "$triple.$max_glibc"
log "build took $(( $(date +%s) - start )) s"

built="target/$triple/release/ecr-fleet"
check_binary "$built"
"$built" --version >/dev/null || die "$built --version failed"

# --- package --------------------------------------------------------------------------------
dist="$root/dist"
mkdir -p "$dist"
rm -f "$dist/$name" "$dist/$name".*
cp "$built" "$dist/$name"
chmod 0755 "$dist/$name"

# A reproducible tarball: fixed order, owner and times (the last commit's), no gzip timestamp.
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp "$built" "$stage/ecr-fleet"
cp LICENSE README.md "$stage/"
epoch="$(git log -1 --format=%ct 2>/dev/null || date +%s)"
tar --create --directory "$stage" --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime="@$epoch" --mode='u+rwX,go+rX,go-w' ecr-fleet LICENSE README.md \
    | gzip -9 -n >"$dist/$name.tar.gz"

(cd "$dist" && sha256sum "$name" >"$name.sha256" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
(cd "$dist" && sha256sum -c --quiet "$name.sha256" "$name.tar.gz.sha256")

log "artifacts:"
(cd "$dist" && ls -l "$name" "$name.tar.gz" && cat "$name.sha256" "$name.tar.gz.sha256") >&2
