"""Runs the shell of deploy/buildspec.yml and deploy/buildspec-batch.yml the way CodeBuild does.

    .venv/bin/python scripts/test-buildspecs.py [NAME-FILTER]   (scripts/lint-templates.sh runs it)

No AWS and no CodeBuild here: each phase's commands run in bash, in phase order, with the
variables CodeBuild would set. Two stand-ins sit first on PATH: `aws` keeps `aws s3 cp` in a
local folder (the bucket) and fails uploads when a scenario says so, and `ecr-fleet` records
its arguments, writes the files its options name and exits with the code a scenario asks for.
So these tests check the buildspecs' own logic: checksum and version checks, which command
runs with which options, how each exit code maps to the build result, that reports and
journals reach the run prefix even when the build fails, that a failed upload fails the build,
and how the batch merge step combines its shards.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

from checks import check, run_tests

ROOT = Path(__file__).resolve().parent.parent
SINGLE = ROOT / "deploy" / "buildspec.yml"
BATCH = ROOT / "deploy" / "buildspec-batch.yml"
VERSION = "0.3.0"
BUCKET = "fleet-bucket"

AWS_STUB = r'''#!/usr/bin/env python3
"""aws s3 cp against a local folder: s3://BUCKET/KEY is $FAKE_S3/BUCKET/KEY.

With STUB_AWS_FAIL_UPLOADS=1, a copy to s3:// fails as a denied or unreachable S3 would."""
import fnmatch, os, shutil, sys
from pathlib import Path

root = Path(os.environ["FAKE_S3"])
args = sys.argv[1:]
if os.environ.get("STUB_AWS_FAIL_UPLOADS") == "1" and args[:2] == ["s3", "cp"] and args[-1].startswith("s3://"):
    sys.exit("upload failed: An error occurred (AccessDenied) when calling the PutObject operation: Access Denied")
if args[:2] != ["s3", "cp"]:
    sys.exit(f"aws stub: unsupported command {args}")
args = args[2:]
recursive = "--recursive" in args
filters, paths, i = [], [], 0
while i < len(args):
    a = args[i]
    if a in ("--exclude", "--include"):
        filters.append((a, args[i + 1])); i += 2
    elif a.startswith("--"):
        i += 1
    else:
        paths.append(a); i += 1
src, dst = paths

def local(p):
    return root / p[len("s3://"):] if p.startswith("s3://") else Path(p)

def wanted(rel):
    keep = True
    for kind, pattern in filters:
        if fnmatch.fnmatch(rel, pattern):
            keep = kind == "--include"
    return keep

s, d = local(src), local(dst)
if recursive:
    if not s.is_dir():
        sys.exit(0)
    for f in sorted(s.rglob("*")):
        rel = f.relative_to(s).as_posix()
        if f.is_file() and wanted(rel):
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, d / rel)
else:
    if not s.is_file():
        sys.exit(f"fatal error: An error occurred (404) when calling the HeadObject operation: {src}")
    d.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(s, d)
'''

ECR_FLEET_STUB = r'''#!/usr/bin/env python3
"""Stand-in for ecr-fleet: records argv, writes the files its options name, exits as told."""
import json, os, sys

args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
if args == ["--version"]:
    print(f"ecr-fleet {os.environ.get('STUB_VERSION', '0.3.0')} (0123abc 2026-11-25)")
    sys.exit(0)
if args[0] == "validate":
    sys.exit(int(os.environ.get("STUB_VALIDATE_EXIT", "0")))
if args[0] == "doctor":
    print(json.dumps({"checks": [{"check": "credentials", "ok": True}]}))
    sys.exit(int(os.environ.get("STUB_EXIT", "0")))
def opt(name):
    return args[args.index(name) + 1] if name in args else None
if args[:2] == ["report", "merge"]:
    files = []
    for a, before in zip(args[2:], args[1:]):
        if not a.startswith("--") and not before.startswith("--"):
            files.append(a)
    merged = {"merged": [json.load(open(f)) for f in files]}
    if opt("--report"):
        json.dump(merged, open(opt("--report"), "w"))
    if opt("--html"):
        open(opt("--html"), "w").write("<!doctype html><title>ecr-fleet merged</title>\n")
    print("# ecr-fleet merged" if opt("--output") == "markdown" else json.dumps(merged))
    sys.exit(int(os.environ.get("STUB_MERGE_EXIT", "0")))
shard = opt("--shard")
if opt("--report"):
    json.dump({"command": args[0], "shard": shard}, open(opt("--report"), "w"))
if opt("--junit"):
    open(opt("--junit"), "w").write("<testsuites/>\n")
if opt("--html"):
    open(opt("--html"), "w").write("<!doctype html><title>ecr-fleet</title>\n")
if opt("--backup") and args[0] == "apply":
    open(opt("--backup"), "w").write('{"backup_version": 2}\n')
print(f"# ecr-fleet {args[0]}")
code = os.environ.get("STUB_EXIT_" + shard.split("/")[0] if shard else "STUB_EXIT")
sys.exit(int(code or os.environ.get("STUB_EXIT", "0")))
'''


class Build:
    """One emulated CodeBuild build: a source folder, a shared fake S3 and the stubs."""

    def __init__(self, world, spec_path, env, number=7):
        self.world = world
        self.spec = yaml.safe_load(spec_path.read_text())
        self.src = Path(tempfile.mkdtemp(dir=world.tmp, prefix="src-"))
        for f in ("ecr-fleet.toml",):
            if world.with_config:
                (self.src / f).write_text('regions = ["us-east-1"]\n')
        variables = {k: str(v) for k, v in (self.spec.get("env", {}).get("variables") or {}).items()}
        variables.update(world.project_env)
        variables.update(env)
        self.env = dict(os.environ)
        self.env.update(variables)
        self.env.update({
            "PATH": f"{world.stubs}:{world.install}:{os.environ['PATH']}",
            "CODEBUILD_BUILD_NUMBER": str(number),
            "CODEBUILD_SRC_DIR": str(self.src),
            "FAKE_S3": str(world.s3),
            "STUB_LOG": str(world.log),
            "HOME": str(world.tmp),
        })
        self.failed_phase = None

    def run(self):
        """Phases in order; the first failure skips the rest, but post_build follows build."""
        phases = self.spec["phases"]
        for name in ("install", "pre_build", "build"):
            if not self._phase(phases.get(name)):
                self.failed_phase = name
                break
        if self.failed_phase in (None, "build"):
            if not self._phase(phases.get("post_build")) and self.failed_phase is None:
                self.failed_phase = "post_build"
        return self

    def _phase(self, phase):
        for command in (phase or {}).get("commands", []):
            r = subprocess.run(["bash", "-c", command], cwd=self.src, env=self.env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.output = getattr(self, "output", "") + r.stdout
            if r.returncode != 0:
                self.exit_status = r.returncode
                return False
        return True


class World:
    """A fake bucket holding a release, project variables as hub.yaml sets them, the stubs."""

    made = []

    def __init__(self, with_config=True, binary_version=VERSION, packaging="tar.gz", version=VERSION):
        self.tmp = Path(tempfile.mkdtemp(prefix="buildspec-test-"))
        World.made.append(self.tmp)
        self.s3 = self.tmp / "s3"
        self.stubs = self.tmp / "stubs"
        self.install = self.tmp / "bin"
        self.log = self.tmp / "calls.jsonl"
        for d in (self.s3 / BUCKET, self.stubs, self.install):
            d.mkdir(parents=True)
        self.log.touch()
        self.with_config = with_config
        for name, text in (("aws", AWS_STUB), ("ecr-fleet", ECR_FLEET_STUB)):
            (self.tmp / name).write_text(text)
        shutil.copy(self.tmp / "aws", self.stubs / "aws")
        (self.stubs / "aws").chmod(0o755)
        # The "release": the stand-in binary, packaged like scripts/release.sh does.
        binary = self.tmp / "ecr-fleet"
        binary.chmod(0o755)
        rel = self.s3 / BUCKET / "releases"
        rel.mkdir()
        if packaging == "tar.gz":
            artifact = rel / f"ecr-fleet-{VERSION}-x86_64-unknown-linux-gnu.tar.gz"
            with tarfile.open(artifact, "w:gz") as t:
                t.add(binary, arcname="ecr-fleet")
        else:
            artifact = rel / f"ecr-fleet-{VERSION}-x86_64-unknown-linux-gnu"
            shutil.copy(binary, artifact)
        self.sha = hashlib.sha256(artifact.read_bytes()).hexdigest()
        self.project_env = {
            "ECR_FLEET_MODE": "plan",
            "ECR_FLEET_EXTRA_ARGS": "",
            "ECR_FLEET_FAIL_ON_DRIFT": "false",
            "ECR_FLEET_VERSION": version,
            "ECR_FLEET_RELEASE_URL": f"s3://{BUCKET}/releases/{artifact.name}",
            "ECR_FLEET_RELEASE_SHA256": self.sha,
            "ECR_FLEET_BUCKET": BUCKET,
            "ECR_FLEET_CONFIG": "ecr-fleet.toml",
            "ECR_FLEET_INSTALL_DIR": str(self.install),
            "STUB_VERSION": binary_version,
        }

    def calls(self):
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def runs(self):
        base = self.s3 / BUCKET / "runs"
        if not base.is_dir():
            return {}
        return {p.relative_to(base).as_posix(): p for p in sorted(base.rglob("*")) if p.is_file()}

    def single(self, **env):
        return Build(self, SINGLE, env).run()

    def batch(self, **env):
        """Every shard of the build graph, then the builds that depend on them."""
        spec = yaml.safe_load(BATCH.read_text())
        builds = {}
        for entry in spec["batch"]["build-graph"]:
            shard_env = dict(env)
            shard_env.update({k: str(v) for k, v in entry.get("env", {}).get("variables", {}).items()})
            builds[entry["identifier"]] = Build(self, BATCH, shard_env, number=10 + len(builds)).run()
        return builds


# --- scenarios --------------------------------------------------------------------------------


def ecr_fleet_runs(world):
    return [c for c in world.calls() if c and c[0] in ("plan", "audit", "apply", "restore")]


def test_plan_with_drift_passes_and_uploads_everything():
    w = World()
    b = w.single(ECR_FLEET_EXTRA_ARGS="--images --regions enabled", STUB_EXIT="3",
                 ECR_FLEET_RUN_ID="2026-11-25T06:00:00Z")
    check(b.failed_phase is None, f"exit 3 must not fail the build by default:\n{b.output}")
    [run] = ecr_fleet_runs(w)
    check(run == ["plan", "--no-progress", "--output", "markdown", "--report", "out/report.json",
                  "--html", "out/report.html", "--junit", "out/junit.xml", "--images", "--regions",
                  "enabled"], f"argv {run}")
    check(["validate", "--config", "ecr-fleet.toml"] in w.calls(), "validate runs first")
    files = set(w.runs())
    want = {f"20261125T060000Z-plan-7/{f}"
            for f in ("report.json", "report.html", "report.md", "junit.xml", "exit-code")}
    check(want <= files, f"uploaded {files}")
    check(w.runs()["20261125T060000Z-plan-7/exit-code"].read_text().strip() == "3", "exit code kept")


def test_fail_on_drift_fails_the_build_but_still_uploads():
    w = World()
    b = w.single(STUB_EXIT="3", ECR_FLEET_FAIL_ON_DRIFT="true", ECR_FLEET_MODE="audit")
    check(b.failed_phase == "build" and b.exit_status == 3, f"{b.failed_phase} {b.output}")
    check(any(k.endswith("-audit-7/report.json") for k in w.runs()), f"uploaded {list(w.runs())}")


def test_apply_failure_fails_the_build_and_keeps_the_journal():
    w = World()
    b = w.single(ECR_FLEET_MODE="apply", STUB_EXIT="1")
    check(b.failed_phase == "build" and b.exit_status == 1, b.output)
    [run] = ecr_fleet_runs(w)
    check(run[:2] == ["apply", "--yes"] and "--backup" in run and "out/journal.jsonl" in run, f"argv {run}")
    check(any(k.endswith("-apply-7/journal.jsonl") for k in w.runs()), f"uploaded {list(w.runs())}")


def test_invalid_input_fails_with_exit_2():
    w = World()
    b = w.single(STUB_EXIT="2")
    check(b.failed_phase == "build" and b.exit_status == 2, b.output)


def test_checksum_mismatch_stops_before_anything_runs():
    w = World()
    b = w.single(ECR_FLEET_RELEASE_SHA256="0" * 64)
    check(b.failed_phase == "install", b.output)
    check("SHA-256 mismatch" in b.output, b.output)
    check(w.calls() == [], f"nothing may run: {w.calls()}")
    check(not (w.install / "ecr-fleet").exists(), "the unverified binary must not be installed")


def test_wrong_version_stops_the_build():
    w = World(binary_version="0.2.1")
    b = w.single()
    check(b.failed_phase == "install" and "is not ecr-fleet 0.3.0" in b.output, b.output)


def test_version_is_compared_literally():
    # A `+` of semver build metadata must be a plus, not "one or more of the previous digit";
    # dots must be dots.
    for reported in ("0.3.0build.1", "0.3.00build.1", "0.3.0+build.1.1", "0x3.0+build.1", "0.3.0"):
        b = World(version="0.3.0+build.1", binary_version=reported).single()
        check(b.failed_phase == "install" and "is not ecr-fleet 0.3.0+build.1" in b.output,
              f"{reported} must not pass for 0.3.0+build.1:\n{b.output}")
    b = World(version="0.3.0+build.1", binary_version="0.3.0+build.1").single()
    check(b.failed_phase is None, f"the exact version passes:\n{b.output}")
    b = World(version="0.3.0-rc.1", binary_version="0.3.0").single()
    check(b.failed_phase == "install", f"a pre-release is not its release:\n{b.output}")


def test_failed_upload_fails_the_build():
    # Before: post_build ended with `ls`, so a failed upload left the build green.
    w = World()
    b = w.single(STUB_EXIT="0", STUB_AWS_FAIL_UPLOADS="1")
    check(b.failed_phase == "post_build" and b.exit_status == 1, f"{b.failed_phase}:\n{b.output}")
    check("uploading out/ to s3://" in b.output and "failed" in b.output, b.output)
    check(w.runs() == {}, f"nothing reached the bucket: {list(w.runs())}")
    # A failed apply whose upload fails too still fails (the build phase's code is kept).
    b = World().single(ECR_FLEET_MODE="apply", STUB_EXIT="1", STUB_AWS_FAIL_UPLOADS="1")
    check(b.failed_phase == "build" and b.exit_status == 1, b.output)
    check("uploading out/ to s3://" in b.output, "post_build still ran and said why")


def test_failed_upload_fails_a_shard_build():
    w = World()
    b = Build(w, BATCH, {"ECR_FLEET_RUN_ID": "r3", "ECR_FLEET_SHARD": "1/4",
                         "STUB_AWS_FAIL_UPLOADS": "1"}).run()
    check(b.failed_phase == "post_build" and b.exit_status == 1, f"{b.failed_phase}:\n{b.output}")


def test_doctor_mode_runs_doctor_and_uploads_its_json():
    w = World()
    b = w.single(ECR_FLEET_MODE="doctor", ECR_FLEET_EXTRA_ARGS="--images", ECR_FLEET_RUN_ID="d1")
    check(b.failed_phase is None, b.output)
    [run] = [c for c in w.calls() if c and c[0] == "doctor"]
    check(run == ["doctor", "--config", "ecr-fleet.toml", "--output", "json"], f"argv {run}")
    check(ecr_fleet_runs(w) == [], "doctor runs no plan, audit or apply")
    runs = w.runs()
    check({"d1-doctor-7/doctor.json", "d1-doctor-7/exit-code"} <= set(runs), f"{list(runs)}")
    check(json.loads(runs["d1-doctor-7/doctor.json"].read_text())["checks"], "doctor.json is its output")
    # A failed check fails the build; the JSON is uploaded all the same.
    w = World()
    b = w.single(ECR_FLEET_MODE="doctor", STUB_EXIT="1", ECR_FLEET_RUN_ID="d2")
    check(b.failed_phase == "build" and b.exit_status == 1 and "some checks failed" in b.output, b.output)
    check("d2-doctor-7/doctor.json" in w.runs(), f"{list(w.runs())}")
    # A bad config is exit 2.
    b = World().single(ECR_FLEET_MODE="doctor", STUB_EXIT="2")
    check(b.failed_phase == "build" and b.exit_status == 2, b.output)


def test_batch_refuses_doctor():
    b = Build(World(), BATCH, {"ECR_FLEET_SHARD": "1/4", "ECR_FLEET_RUN_ID": "x",
                               "ECR_FLEET_MODE": "doctor"}).run()
    check(b.failed_phase == "pre_build" and b.exit_status == 2 and "buildspec.yml" in b.output, b.output)


def test_html_report_beside_json_in_every_mode():
    for mode in ("audit", "apply"):
        w = World()
        b = w.single(ECR_FLEET_MODE=mode, ECR_FLEET_RUN_ID="h")
        check(b.failed_phase is None, b.output)
        [run] = ecr_fleet_runs(w)
        check(run[run.index("--html") + 1] == "out/report.html", f"argv {run}")
        check(f"h-{mode}-7/report.html" in w.runs(), f"{list(w.runs())}")
        check(f"HTML report: s3://{BUCKET}/runs/h-{mode}-7/report.html" in b.output, b.output)
    w = World()
    w.batch(ECR_FLEET_RUN_ID="hb")
    check("hb-plan-batch/shard-3/report.html" in w.runs(), f"{list(w.runs())}")


def test_bare_binary_and_preinstalled_binary():
    w = World(packaging="binary")
    check(w.single().failed_phase is None, "bare binary installs")
    # Second build: the installed binary matches the checksum, so no download happens.
    (w.s3 / BUCKET / "releases").rename(w.tmp / "gone")
    b = w.single()
    check(b.failed_phase is None and "not downloading" in b.output, b.output)


def test_missing_config_is_exit_2():
    w = World(with_config=False)
    b = w.single()
    check(b.failed_phase == "pre_build" and b.exit_status == 2, b.output)
    check("aws s3 sync" in b.output, b.output)


def test_restore_fetches_the_journal():
    w = World()
    journal = w.s3 / BUCKET / "runs" / "x-apply-3" / "journal.jsonl"
    journal.parent.mkdir(parents=True)
    journal.write_text('{"backup_version": 2}\n')
    b = w.single(ECR_FLEET_MODE="restore", ECR_FLEET_RESTORE_FROM=f"s3://{BUCKET}/runs/x-apply-3/journal.jsonl")
    check(b.failed_phase is None, b.output)
    [run] = ecr_fleet_runs(w)
    check(run[:4] == ["restore", "--yes", "--backup", "out/restored-journal.jsonl"], f"argv {run}")
    check(run[-2:] == ["--junit", "out/junit.xml"], f"restore publishes JUnit too: {run}")


def test_restore_without_journal_is_exit_2():
    w = World()
    b = w.single(ECR_FLEET_MODE="restore")
    check(b.failed_phase == "build" and b.exit_status == 2, b.output)


def test_unknown_mode_is_exit_2():
    b = World().single(ECR_FLEET_MODE="destroy")
    check(b.failed_phase == "pre_build" and b.exit_status == 2, b.output)


def test_batch_merges_all_shards_and_takes_the_worst_code():
    w = World()
    builds = w.batch(ECR_FLEET_RUN_ID="2026-11-25T06:00:00Z", STUB_EXIT_1="0", STUB_EXIT_2="3",
                     STUB_EXIT_3="1", STUB_EXIT_4="0")
    shards = sorted(c[c.index("--shard") + 1] for c in ecr_fleet_runs(w))
    check(shards == ["1/4", "2/4", "3/4", "4/4"], f"shards {shards}")
    check(builds["shard_3"].failed_phase == "build", "shard 3 exits 1")
    merge = builds["merge"]
    check(merge.failed_phase == "build" and merge.exit_status == 1, merge.output)
    [m] = [c for c in w.calls() if c[:2] == ["report", "merge"]]
    inputs = m[2:m.index("--output")]
    check(len(inputs) == 4 and all(f.endswith("/report.json") for f in inputs), f"merge argv {m}")
    runs = w.runs()
    merged = json.loads(runs["20261125T060000Z-plan-batch/report.json"].read_text())
    check([r["shard"] for r in merged["merged"]] == ["1/4", "2/4", "3/4", "4/4"], f"{merged}")
    # The merge build publishes the organization's HTML page and prints its Markdown summary.
    check("20261125T060000Z-plan-batch/report.html" in runs, f"{list(runs)}")
    check(runs["20261125T060000Z-plan-batch/report.md"].read_text() == "# ecr-fleet merged\n",
          "merged Markdown")
    check("# ecr-fleet merged" in merge.output, merge.output)
    check("HTML report: s3://" in merge.output and "plan-batch/report.html" in merge.output,
          merge.output)
    check("20261125T060000Z-plan-batch/shard-2/junit.xml" in runs, f"{list(runs)}")


def test_batch_drift_only_passes_and_missing_shard_fails():
    w = World()
    builds = w.batch(ECR_FLEET_RUN_ID="r1", STUB_EXIT="3")
    check(builds["merge"].failed_phase is None, builds["merge"].output)
    check(w.runs()["r1-plan-batch/exit-code"].read_text().strip() == "3", "merged exit code 3")
    # A shard that never reported (its install failed) makes the merge fail with 1.
    w2 = World()
    shard_dir = w2.s3 / BUCKET / "runs" / "r2-plan-batch"
    b = Build(w2, BATCH, {"ECR_FLEET_RUN_ID": "r2", "ECR_FLEET_SHARD": "2/4"}).run()
    check(b.failed_phase is None and (shard_dir / "shard-2" / "report.json").exists(), b.output)
    merge = Build(w2, BATCH, {"ECR_FLEET_RUN_ID": "r2", "ECR_FLEET_SHARD": "merge"}).run()
    check(merge.failed_phase == "build" and merge.exit_status == 1, merge.output)
    check("shard 1/4 wrote no report" in merge.output, merge.output)


def test_batch_merge_that_fails_is_exit_2_with_every_shard_clean():
    w = World()
    builds = w.batch(ECR_FLEET_RUN_ID="r3", STUB_EXIT="0", STUB_MERGE_EXIT="2")
    merge = builds["merge"]
    check(merge.failed_phase == "build" and merge.exit_status == 2, merge.output)
    check("merging the shard reports failed" in merge.output, merge.output)
    check(w.runs()["r3-plan-batch/exit-code"].read_text().strip() == "2", "exit code 2 recorded")


def test_batch_needs_a_run_id_and_refuses_restore():
    w = World()
    b = Build(w, BATCH, {"ECR_FLEET_SHARD": "1/4"}).run()
    check(b.failed_phase == "pre_build" and "ECR_FLEET_RUN_ID" in b.output, b.output)
    b = Build(w, BATCH, {"ECR_FLEET_SHARD": "1/4", "ECR_FLEET_RUN_ID": "x", "ECR_FLEET_MODE": "restore"}).run()
    check(b.failed_phase == "pre_build" and b.exit_status == 2, b.output)


def test_batch_graph_covers_every_shard_once():
    spec = yaml.safe_load(BATCH.read_text())
    n = int(spec["env"]["variables"]["ECR_FLEET_SHARDS"])
    graph = spec["batch"]["build-graph"]
    shards = [e["env"]["variables"]["ECR_FLEET_SHARD"] for e in graph if e["identifier"] != "merge"]
    check(sorted(shards) == [f"{k}/{n}" for k in range(1, n + 1)], f"shards {shards} for N={n}")
    [merge] = [e for e in graph if e["identifier"] == "merge"]
    check(sorted(merge["depend-on"]) == sorted(e["identifier"] for e in graph if e is not merge),
          "merge depends on every shard")


def clean():
    for d in World.made:
        shutil.rmtree(d, ignore_errors=True)
    World.made.clear()


if __name__ == "__main__":
    run_tests(globals(), "buildspecs", after_each=clean)
