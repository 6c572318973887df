#!/usr/bin/env bash
# Lints the deployment files in deploy/.
#
#   bash scripts/lint-templates.sh
#
# Every CloudFormation template (deploy/*.yaml) must pass cfn-lint with zero errors and zero
# warnings: cfn-lint exits non-zero on either. A warning that is wrong for a template is
# silenced inside that template (Metadata cfn-lint ignore_checks) with a comment saying why.
# The CodeBuild buildspecs (deploy/buildspec*.yml) are not CloudFormation; they must parse as
# YAML, carry the keys CodeBuild requires and share one install phase, and their shell is
# exercised by scripts/test-buildspecs.py. scripts/test-templates.py checks the templates'
# security and naming properties and scripts/upload-release.sh.
#
# Installs the pinned cfn-lint (scripts/requirements-lint.txt) into the project-local
# virtualenv .venv, once: a second run costs one hash.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="$root/.venv"

log() { printf 'lint-templates.sh: %s\n' "$*" >&2; }

# shellcheck source=scripts/venv.sh
source "$root/scripts/venv.sh"
venv_requirements "$root/scripts/requirements-lint.txt" cfn-lint

shopt -s nullglob
templates=(deploy/*.yaml)
buildspecs=(deploy/buildspec*.yml)
if (( ${#templates[@]} == 0 )); then
    log "no templates found in deploy/"
    exit 1
fi

log "cfn-lint $("$venv/bin/cfn-lint" --version 2>&1 | awk '{print $NF}') on ${templates[*]}"
# Each template names the regions it is checked against (Metadata cfn-lint config regions).
"$venv/bin/cfn-lint" -- "${templates[@]}"

# PyYAML comes with cfn-lint.
"$venv/bin/python" - "${buildspecs[@]}" <<'PY'
import sys
import yaml

PHASES = ("install", "pre_build", "build", "post_build")


def check(path):
    """Returns the problems of one buildspec, and the parsed document."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except yaml.YAMLError as e:
        return [f"not valid YAML: {e}"], None
    if not isinstance(doc, dict):
        return ["a buildspec must be a YAML mapping"], None
    problems = []
    if str(doc.get("version")) != "0.2":
        problems.append(f"version: expected 0.2, found {doc.get('version')!r}")
    phases = doc.get("phases")
    if not isinstance(phases, dict) or not phases:
        problems.append("phases: expected a mapping of phases")
        phases = {}
    for name, phase in phases.items():
        if name not in PHASES:
            problems.append(f"phases.{name}: unknown phase (expected one of {', '.join(PHASES)})")
        elif not isinstance(phase, dict) or not isinstance(phase.get("commands"), list):
            problems.append(f"phases.{name}.commands: expected a list of commands")
    for group, spec in (doc.get("reports") or {}).items():
        if not isinstance(spec, dict) or spec.get("file-format") != "JUNITXML":
            problems.append(f"reports.{group}: expected file-format JUNITXML")
    return problems, doc


failed = False
installs = {}
for path in sys.argv[1:]:
    problems, doc = check(path)
    for p in problems:
        print(f"{path}: {p}", file=sys.stderr)
    failed |= bool(problems)
    if doc is not None and not problems:
        installs[path] = doc["phases"].get("install")
        print(f"{path}: ok")

# The buildspecs fetch and verify the binary the same way; a fix to one must reach the other.
if len({yaml.safe_dump(v) for v in installs.values()}) > 1:
    print("the install phases of " + " and ".join(installs) + " differ; keep them identical",
          file=sys.stderr)
    failed = True
sys.exit(1 if failed else 0)
PY

# The buildspecs' shell, run phase by phase with stand-ins for aws and ecr-fleet.
"$venv/bin/python" scripts/test-buildspecs.py
# What cfn-lint does not check: the roles' permissions, names derived from the stack name, the
# schedule's dead-letter queue, docs/iam in step, no made-up URL, and upload-release.sh.
"$venv/bin/python" scripts/test-templates.py
log "templates and buildspecs are clean"
