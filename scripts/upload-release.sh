#!/usr/bin/env bash
# Uploads a release tarball built by scripts/release.sh, and its .sha256 file, to the
# releases/ folder of the hub bucket, where the hub stack's default ReleaseUrl points.
#
#   bash scripts/upload-release.sh --stack STACK_NAME [--region REGION] [--version VERSION] [--dry-run]
#   bash scripts/upload-release.sh --bucket BUCKET    [--region REGION] [--version VERSION] [--dry-run]
#
#   --stack      the hub stack (deploy/hub.yaml); its BucketName output names the bucket
#   --bucket     the hub bucket itself, instead of --stack
#   --region     passed to every aws call (else the AWS CLI's own default)
#   --version    the release to upload (default: the version in Cargo.toml)
#   --arch       x86_64 (default) or aarch64
#   --dry-run    check the files and print the aws commands without running them; with
#                --stack, the read-only describe-stacks call still runs to find the bucket
#
# The files are dist/ecr-fleet-<version>-<arch>-unknown-linux-gnu.tar.gz and its .sha256.
# Their checksum is verified before anything is uploaded. At the end the script prints the
# value for the stack's ReleaseSha256 parameter and the s3:// URL the build fetches. Uses the
# AWS CLI (v2) with whatever credentials and profile it finds.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf 'upload-release.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# Prints the header comment above as the usage text, and exits with $1 (2 by default).
usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&2; exit "${1:-2}"; }

stack="" bucket="" region="" version="" arch="x86_64" dry_run=false
while (( $# > 0 )); do
    case "$1" in
        --stack) stack="${2:?--stack needs a value}"; shift 2 ;;
        --bucket) bucket="${2:?--bucket needs a value}"; shift 2 ;;
        --region) region="${2:?--region needs a value}"; shift 2 ;;
        --version) version="${2:?--version needs a value}"; shift 2 ;;
        --arch) arch="${2:?--arch needs a value}"; shift 2 ;;
        --dry-run) dry_run=true; shift ;;
        -h|--help) usage 0 ;;
        *) log "unknown argument '$1'"; usage ;;
    esac
done
if [[ -n "$stack" && -n "$bucket" ]] || [[ -z "$stack" && -z "$bucket" ]]; then
    log "give exactly one of --stack and --bucket"
    usage
fi
[[ "$arch" == x86_64 || "$arch" == aarch64 ]] || die "unknown architecture '$arch' (x86_64, aarch64)"

if [[ -z "$version" ]]; then
    # The [package] version of Cargo.toml, without asking cargo (which may not be installed
    # where the release is uploaded from).
    version="$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' "$root/Cargo.toml" | head -n 1)"
fi
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] || die "not a release version: '$version'"

name="ecr-fleet-$version-$arch-unknown-linux-gnu.tar.gz"
tarball="$root/dist/$name"
sumfile="$tarball.sha256"
[[ -f "$tarball" ]] || die "dist/$name not found: build it first with bash scripts/release.sh $arch"
[[ -f "$sumfile" ]] || die "dist/$name.sha256 not found: build it with bash scripts/release.sh $arch"
(cd "$root/dist" && sha256sum --check --strict --quiet "$name.sha256") \
    || die "dist/$name does not match dist/$name.sha256"
sha="$(cut -d' ' -f1 "$sumfile")"

aws_args=()
[[ -n "$region" ]] && aws_args+=(--region "$region")

if [[ -n "$stack" ]]; then
    bucket="$(aws "${aws_args[@]}" cloudformation describe-stacks --stack-name "$stack" \
        --query "Stacks[0].Outputs[?OutputKey=='BucketName'].OutputValue" --output text)" \
        || die "cannot read the outputs of stack '$stack'"
    [[ -n "$bucket" && "$bucket" != None ]] || die "stack '$stack' has no BucketName output: is it a hub stack (deploy/hub.yaml)?"
fi

dest="s3://$bucket/releases"
commands=(
    "aws ${aws_args[*]:+${aws_args[*]} }s3 cp --only-show-errors dist/$name $dest/$name"
    "aws ${aws_args[*]:+${aws_args[*]} }s3 cp --only-show-errors dist/$name.sha256 $dest/$name.sha256"
)
if $dry_run; then
    log "dry run: would run"
    printf '  %s\n' "${commands[@]}" >&2
else
    aws "${aws_args[@]}" s3 cp --only-show-errors "$tarball" "$dest/$name"
    aws "${aws_args[@]}" s3 cp --only-show-errors "$sumfile" "$dest/$name.sha256"
    log "uploaded $name and its .sha256 to $dest/"
fi

cat <<EOF
ReleaseVersion=$version
ReleaseSha256=$sha
ReleaseLocation=$dest/$name
EOF
