#!/usr/bin/env bash
# Builds the release artifacts of ecr-fleet for Linux (x86_64 and, where its Rust standard
# library can be had, aarch64).
#
#   bash scripts/release.sh                      # every target
#   bash scripts/release.sh x86_64               # only these architectures
#   bash scripts/release.sh --check FILE         # only check FILE (glibc needs, stripped, ELF)
#   bash scripts/release.sh --glibc-only         # CI: debug build for x86_64 glibc 2.26, checked
#
# Each binary is built with cargo-zigbuild for <arch>-unknown-linux-gnu.2.26: it links against
# glibc symbols no newer than 2.26, so it runs on Amazon Linux 2 (the oldest CodeBuild Linux
# image family) and every newer distribution. cargo-zigbuild and zig (the `ziglang` package)
# come from PyPI into the project-local virtualenv .venv (scripts/requirements-release.txt);
# zig is the C compiler and linker for every target, so no cross toolchain or sysroot is needed.
# aarch64 also needs Rust's standard library for that target (`rustup target add`); when it is
# neither installed nor obtainable, aarch64 is skipped with a warning and x86_64 still built.
#
# Output, in dist/ (git-ignored), per architecture:
#   ecr-fleet-<version>-<arch>-unknown-linux-gnu            the stripped binary
#   ecr-fleet-<version>-<arch>-unknown-linux-gnu.tar.gz     the binary, LICENSE and README.md
#   *.sha256                                                 `sha256sum -c` files for both
#
# The script fails when a binary needs a GLIBC_ symbol version above 2.26, is not stripped, is
# not an ELF executable of its architecture, or (x86_64, on this host) does not run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

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

# Fails unless FILE is a stripped ELF executable (of MACHINE, as readelf names it, if given)
# whose glibc needs stay at or below $max_glibc. With a third argument "unstripped", a debug
# build passes the strip check.
check_binary() {
    local file="$1" machine="${2:-}" strip="${3:-stripped}" need
    [[ -f "$file" ]] || die "$file: no such file"
    readelf --file-header "$file" >/dev/null 2>&1 || die "$file: not an ELF file"
    if [[ -n "$machine" ]]; then
        readelf --file-header "$file" | grep -qE "Machine: +$machine\$" \
            || die "$file: not a $machine executable ($(readelf --file-header "$file" | grep Machine:))"
    fi
    if [[ "$strip" == stripped ]] && readelf --wide --section-headers "$file" | grep -qE '\] \.symtab '; then
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

glibc_only=false
if [[ "${1:-}" == "--glibc-only" ]]; then
    [[ $# -eq 1 ]] || die "usage: $0 --glibc-only"
    glibc_only=true
    shift
fi

arches=("$@")
(( ${#arches[@]} > 0 )) || arches=(x86_64 aarch64)
$glibc_only && arches=(x86_64)
for arch in "${arches[@]}"; do
    [[ "$arch" == x86_64 || "$arch" == aarch64 ]] || die "unknown architecture '$arch' (x86_64, aarch64)"
done

# --- tools, installed once into .venv ------------------------------------------------------
venv="$root/.venv"
# shellcheck source=scripts/venv.sh
source "$root/scripts/venv.sh"
venv_requirements "$root/scripts/requirements-release.txt" cargo-zigbuild
# cargo-zigbuild finds zig through `python -m ziglang` when no `zig` is on PATH; putting the
# venv first makes it use the pinned one.
export PATH="$venv/bin:$PATH"

# CI's cheap form of the glibc check: the same dependencies, linked by the same zig against
# the same glibc 2.26 symbols, in the debug profile (minutes, where the fat-LTO dist build takes
# much longer). Optimisation and LTO drop code, they do not add glibc symbol versions.
if $glibc_only; then
    triple="x86_64-unknown-linux-gnu"
    log "debug build for $triple.$max_glibc (glibc check only)"
    cargo zigbuild --locked -p ecr-fleet --bin ecr-fleet --target "$triple.$max_glibc"
    check_binary "target/$triple/debug/ecr-fleet" "Advanced Micro Devices X86-64" unstripped
    "target/$triple/debug/ecr-fleet" --version >/dev/null || die "the debug build does not run"
    exit 0
fi

version="$(cargo pkgid --quiet -p ecr-fleet | sed -E 's/.*[#@]//')"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || die "cannot read the package version (got '$version')"
log "ecr-fleet $version; cargo-zigbuild $(cargo-zigbuild --version | awk '{print $NF}'), zig $(python -m ziglang version)"

dist="$root/dist"
mkdir -p "$dist"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
epoch="$(git log -1 --format=%ct 2>/dev/null || date +%s)"
built_names=()
skipped=()

# Rust's standard library for TRIPLE: installed, or fetched with rustup when that works here.
have_std() {
    local triple="$1"
    [[ -d "$(rustc --print sysroot)/lib/rustlib/$triple/lib" ]] && return 0
    command -v rustup >/dev/null 2>&1 || return 1
    log "fetching Rust's standard library for $triple (rustup target add)"
    timeout 300 rustup target add "$triple" >&2 || return 1
}

for arch in "${arches[@]}"; do
    triple="$arch-unknown-linux-gnu"
    name="ecr-fleet-$version-$triple"
    case "$arch" in
        x86_64) machine="Advanced Micro Devices X86-64" ;;
        aarch64) machine="AArch64" ;;
    esac
    if ! have_std "$triple"; then
        log "WARNING: skipping $triple: Rust's standard library for it is not installed and rustup could not fetch it"
        skipped+=("$triple")
        continue
    fi

    # --- build ------------------------------------------------------------------------------
    log "building $name"
    start=$(date +%s)
    # The dist profile (Cargo.toml): release plus fat LTO and one codegen unit. Cargo puts a
    # custom profile's output in a folder of that name.
    cargo zigbuild --locked --profile dist -p ecr-fleet --bin ecr-fleet --target "$triple.$max_glibc"
    log "$triple: build took $(( $(date +%s) - start )) s"

    built="target/$triple/dist/ecr-fleet"
    check_binary "$built" "$machine"
    if [[ "$arch" == "$(uname -m)" ]]; then
        "$built" --version >/dev/null || die "$built --version failed"
    fi

    # --- package ----------------------------------------------------------------------------
    rm -f "$dist/$name" "$dist/$name".*
    install -m 0755 "$built" "$dist/$name"
    # A reproducible tarball: fixed order, owner and times (the last commit's), no gzip
    # timestamp.
    rm -rf "${stage:?}"/*
    install -m 0755 "$built" "$stage/ecr-fleet"
    install -m 0644 LICENSE README.md "$stage/"
    tar --create --directory "$stage" --sort=name --owner=0 --group=0 --numeric-owner \
        --mtime="@$epoch" ecr-fleet LICENSE README.md \
        | gzip -9 -n >"$dist/$name.tar.gz"
    (cd "$dist" && sha256sum "$name" >"$name.sha256" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
    (cd "$dist" && sha256sum -c --quiet "$name.sha256" "$name.tar.gz.sha256")
    built_names+=("$name")
done

(( ${#built_names[@]} > 0 )) || die "no artifact built"
log "artifacts in dist/:"
for name in "${built_names[@]}"; do
    (cd "$dist" && stat -c '  %s bytes  %n' "$name" "$name.tar.gz" \
        && sed 's/^/  /' "$name.sha256" "$name.tar.gz.sha256") >&2
done
for triple in "${skipped[@]}"; do
    log "  SKIPPED $triple (no Rust standard library for it)"
done
