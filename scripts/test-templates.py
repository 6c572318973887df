"""Checks what cfn-lint cannot: the security and naming properties of deploy/ and docs/iam/,
and scripts/upload-release.sh against a stand-in `aws`.

    .venv/bin/python scripts/test-templates.py [NAME-FILTER]   (scripts/lint-templates.sh runs it)

The templates are read with cfn-lint's own YAML loader (it understands !Ref, !Sub and the
other short forms), so no AWS account is needed.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from cfnlint.decode import cfn_yaml

from checks import check, run_tests

ROOT = Path(__file__).resolve().parent.parent
HUB = ROOT / "deploy" / "hub.yaml"
SPOKE = ROOT / "deploy" / "spoke-stackset.yaml"

TEMPLATE_READ = "ecr:DescribeRepositoryCreationTemplates"
TEMPLATE_WRITES = {"ecr:CreateRepositoryCreationTemplate", "ecr:UpdateRepositoryCreationTemplate",
                   "ecr:DeleteRepositoryCreationTemplate"}
BUILD_CONTROL = {"codebuild:StartBuild", "codebuild:StopBuild", "codebuild:RetryBuild",
                 "codebuild:StartBuildBatch"}



def load(path):
    return cfn_yaml.loads(path.read_text())


def actions(policies):
    """Every action of a role's inline policies, whatever Fn::If branch holds it."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "Action":
                    found.update([v] if isinstance(v, str) else v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(policies)
    return found


def policy_named(role, name):
    for p in role["Properties"]["Policies"]:
        if isinstance(p, dict) and "Fn::If" in p:
            p = p["Fn::If"][1]
        if p.get("PolicyName") == name:
            return p
    raise AssertionError(f"no policy {name}")


def test_hub_role_cannot_start_stop_or_retry_builds():
    t = load(HUB)
    hub = t["Resources"]["HubRole"]
    check(not (actions(hub["Properties"]["Policies"]) & BUILD_CONTROL),
          f"hub role holds {actions(hub['Properties']['Policies']) & BUILD_CONTROL}")


def test_batch_service_role_exists_only_when_sharded():
    t = load(HUB)
    batch = t["Resources"]["BatchServiceRole"]
    check(batch.get("Condition") == "IsSharded", "the batch role is created only when Sharded")
    check(actions(batch["Properties"]["Policies"]) == {"codebuild:StartBuild", "codebuild:StopBuild",
                                                         "codebuild:RetryBuild"}, "batch role actions")
    cfg = t["Resources"]["Project"]["Properties"]["BuildBatchConfig"]["Fn::If"]
    check(cfg[0] == "IsSharded" and cfg[1]["ServiceRole"] == {"Fn::GetAtt": ["BatchServiceRole", "Arn"]}
          and cfg[2] == {"Ref": "AWS::NoValue"}, f"BuildBatchConfig {cfg}")


def test_concurrent_build_limit_is_explicit_in_both_modes():
    limit = load(HUB)["Resources"]["Project"]["Properties"]["ConcurrentBuildLimit"]["Fn::If"]
    check(limit[0] == "IsSharded" and all(isinstance(v, int) and v >= 1 for v in limit[1:]),
          f"ConcurrentBuildLimit {limit}")
    check(limit[2] == 1, "one build at a time when not sharded")


def test_report_permissions_include_create_report_group():
    hub = load(HUB)["Resources"]["HubRole"]
    acts = actions(policy_named(hub, "codebuild-run"))
    check({"codebuild:CreateReportGroup", "codebuild:CreateReport", "codebuild:UpdateReport",
           "codebuild:BatchPutTestCases"} <= acts, f"{acts}")


def test_a_missed_schedule_is_retried_dead_lettered_and_alarmed():
    t = load(HUB)
    r = t["Resources"]
    target = r["Schedule"]["Properties"]["Target"]["Fn::If"]
    for branch in target[1:]:
        check(branch["RetryPolicy"]["MaximumRetryAttempts"] >= 1, f"retries {branch['RetryPolicy']}")
        check(branch["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]},
              "dead-letter queue on every target")
    check(r["ScheduleDeadLetterQueue"]["Type"] == "AWS::SQS::Queue", "queue")
    alarm = r["MissedRunAlarm"]["Properties"]
    check(alarm["Namespace"] == "AWS/SQS" and alarm["Dimensions"][0]["Value"] ==
          {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "QueueName"]}, f"alarm {alarm}")
    check("sqs:SendMessage" in actions(r["ScheduleRole"]["Properties"]["Policies"]),
          "the schedule's execution role delivers dead-letter events")


def test_every_name_derives_from_the_stack_name():
    t = load(HUB)
    r = t["Resources"]
    text = json.dumps
    check("ProjectName" not in t["Parameters"], "no fixed project name parameter")
    check("AWS::StackName" in text(r["Project"]["Properties"]["Name"]), "project")
    check("AWS::StackName" in text(r["LogGroup"]["Properties"]["LogGroupName"]), "log group")
    check("AWS::StackName" in text(r["ReportGroup"]["Properties"]["Name"]), "report group")
    check(t["Parameters"]["HubRoleName"]["Default"] == "", "hub role name defaults to the stack's")
    check("AWS::StackName" in text(r["HubRole"]["Properties"]["RoleName"]), "hub role")
    # Everything else is left to CloudFormation, which names it after the stack.
    for name, res in r.items():
        props = res.get("Properties", {})
        for key in ("RoleName", "QueueName", "AlarmName", "Name", "LogGroupName", "BucketName"):
            if key in props:
                check("AWS::StackName" in text(props[key]) or name == "HubRole",
                      f"{name}.{key} is fixed: {props[key]}")


def test_release_location_defaults_to_the_stacks_bucket():
    t = load(HUB)
    check(t["Parameters"]["ReleaseUrl"]["Default"] == "", "ReleaseUrl defaults to empty")
    check(re.fullmatch(t["Parameters"]["ReleaseUrl"]["AllowedPattern"], ""), "empty is allowed")
    env = t["Resources"]["Project"]["Properties"]["Environment"]["EnvironmentVariables"]
    [url] = [e["Value"] for e in env if e["Name"] == "ECR_FLEET_RELEASE_URL"]
    check(url["Fn::If"][0] == "HasReleaseUrl", f"{url}")
    check(url["Fn::If"][2] == {"Fn::Sub": "s3://${Bucket}/releases/ecr-fleet-${ReleaseVersion}-x86_64-unknown-linux-gnu.tar.gz"},
          f"default {url['Fn::If'][2]}")


def test_mode_doctor_is_scheduled_as_one_build():
    t = load(HUB)
    check("doctor" in t["Parameters"]["Mode"]["AllowedValues"], "Mode=doctor")
    check(t["Resources"]["Schedule"]["Properties"]["Target"]["Fn::If"][0] == "SchedulesBatch",
          "the batch target depends on SchedulesBatch")
    check("doctor" in json.dumps(t["Conditions"]["SchedulesBatch"]), "doctor never schedules a batch")


def test_external_id_is_a_plain_parameter():
    p = load(SPOKE)["Parameters"]["ExternalId"]
    check(not p.get("NoEcho"), "ExternalId is written in plain text into every trust policy")
    check("not a secret" in p["Description"], p["Description"])


def test_creation_template_permissions_everywhere():
    spoke = load(SPOKE)["Resources"]["SpokeRole"]["Properties"]["Policies"]
    hub = load(HUB)["Resources"]["HubRole"]["Properties"]["Policies"]
    for name, policies in (("spoke", spoke), ("hub", hub)):
        read = [p for p in policies if isinstance(p, dict) and "PolicyName" in p]
        write = [p["Fn::If"] for p in policies if isinstance(p, dict) and "Fn::If" in p]
        check(TEMPLATE_READ in actions(read), f"{name}: read")
        check(not (actions(read) & TEMPLATE_WRITES), f"{name}: writes only under AllowApply")
        check(len(write) == 1 and write[0][0] == "CanWrite" and TEMPLATE_WRITES <= actions(write[0][1]),
              f"{name}: template writes under CanWrite")
    iam = ROOT / "docs" / "iam"
    for f, want_write in (("spoke-policy.json", True), ("hub-policy.json", True),
                          ("spoke-policy-readonly.json", False)):
        acts = actions(json.loads((iam / f).read_text()))
        check(TEMPLATE_READ in acts, f"{f}: read")
        check((TEMPLATE_WRITES <= acts) == want_write and (not want_write) <= (not (acts & TEMPLATE_WRITES)),
              f"{f}: writes {acts & TEMPLATE_WRITES}")
    readme = (iam / "README.md").read_text()
    for a in sorted(TEMPLATE_WRITES | {TEMPLATE_READ}):
        check(a in readme, f"docs/iam/README.md names {a}")


def test_lambda_get_function_risk_is_documented():
    text = (ROOT / "docs" / "iam" / "README.md").read_text()
    check(re.search(r"lambda:GetFunction.{0,400}(download|presigned)", text, re.S | re.I),
          "docs/iam/README.md states that lambda:GetFunction returns a code download link")


def test_dockerfile_is_on_amazon_linux_2023():
    froms = [l for l in (ROOT / "deploy" / "Dockerfile").read_text().splitlines() if l.startswith("FROM ")]
    check(froms == ["FROM public.ecr.aws/amazonlinux/amazonlinux:2023"], f"{froms}")


def test_no_made_up_urls():
    # The project has no public repository or release page; no file may point at one.
    files = [ROOT / "README.md", ROOT / "Cargo.toml"] + list((ROOT / "crates").glob("*/Cargo.toml"))
    for d in ("deploy", "docs"):
        files += [p for p in (ROOT / d).rglob("*") if p.is_file()]
    bad = [f"{p.relative_to(ROOT)}: {line.strip()}" for p in files
           for line in p.read_text(errors="ignore").splitlines()
           if re.search(r"github\.com/ecr-fleet|releases/download", line)]
    check(not bad, "made-up URLs:\n" + "\n".join(bad))
    package = re.search(r"^\[package\]\n(.*?)(?=^\[)", (ROOT / "Cargo.toml").read_text(), re.S | re.M).group(1)
    check(not re.search(r"^repository", package, re.M), "the ecr-fleet package declares no repository")


def test_release_profile_is_not_fat_lto():
    text = (ROOT / "Cargo.toml").read_text()
    release = re.search(r"^\[profile\.release\]\n(.*?)(?=^\[|\Z)", text, re.S | re.M).group(1)
    dist = re.search(r"^\[profile\.dist\]\n(.*?)(?=^\[|\Z)", text, re.S | re.M).group(1)
    body = lambda s: "\n".join(l for l in s.splitlines() if not l.lstrip().startswith("#"))
    check("lto" not in body(release) and "codegen-units" not in body(release), body(release))
    check('inherits = "release"' in dist and 'lto = "fat"' in dist and "codegen-units = 1" in dist, dist)
    check("--profile dist" in (ROOT / "scripts" / "release.sh").read_text(), "release.sh builds dist")


# --- scripts/upload-release.sh ------------------------------------------------------------------

AWS_STUB = r'''#!/usr/bin/env bash
# Records each call; answers describe-stacks with a bucket; copies s3 cp into $FAKE_S3.
printf '%s\n' "$*" >> "$AWS_LOG"
args=("$@")
while [[ "${args[0]}" == --region ]]; do args=("${args[@]:2}"); done
case "${args[0]} ${args[1]}" in
  "cloudformation describe-stacks")
    [[ "${args[3]}" == hub-test ]] || { echo "Stack with id ${args[3]} does not exist" >&2; exit 254; }
    echo "hub-test-bucket-1a2b" ;;
  "s3 cp")
    [[ "${STUB_AWS_FAIL:-}" == 1 ]] && { echo "upload failed: AccessDenied" >&2; exit 1; }
    dst="${args[-1]#s3://}"; mkdir -p "$FAKE_S3/$(dirname "$dst")"; cp "${args[-2]}" "$FAKE_S3/$dst" ;;
  *) echo "aws stub: unsupported $*" >&2; exit 2 ;;
esac
'''


class Upload:
    """A copy of the project's files that upload-release.sh reads, and a stub aws."""

    def __init__(self, version="0.3.0+build.7"):
        self.tmp = Path(tempfile.mkdtemp(prefix="upload-release-test-"))
        (self.tmp / "scripts").mkdir()
        shutil.copy(ROOT / "scripts" / "upload-release.sh", self.tmp / "scripts")
        (self.tmp / "Cargo.toml").write_text(f'[workspace]\n\n[package]\nname = "ecr-fleet"\nversion = "{version}"\n')
        dist = self.tmp / "dist"
        dist.mkdir()
        self.name = f"ecr-fleet-{version}-x86_64-unknown-linux-gnu.tar.gz"
        (dist / self.name).write_bytes(b"not really a tarball")
        self.sha = hashlib.sha256(b"not really a tarball").hexdigest()
        (dist / f"{self.name}.sha256").write_text(f"{self.sha}  {self.name}\n")
        (self.tmp / "bin").mkdir()
        (self.tmp / "bin" / "aws").write_text(AWS_STUB)
        (self.tmp / "bin" / "aws").chmod(0o755)
        self.s3 = self.tmp / "s3"
        self.log = self.tmp / "aws.log"
        self.log.touch()

    def run(self, *args, **env):
        e = dict(os.environ, PATH=f"{self.tmp / 'bin'}:{os.environ['PATH']}", FAKE_S3=str(self.s3),
                 AWS_LOG=str(self.log), **env)
        return subprocess.run(["bash", str(self.tmp / "scripts" / "upload-release.sh"), *args],
                              env=e, capture_output=True, text=True)

    def calls(self):
        return self.log.read_text().splitlines()

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def test_upload_release_by_stack_name():
    u = Upload()
    try:
        r = u.run("--stack", "hub-test", "--region", "eu-west-1")
        check(r.returncode == 0, r.stderr)
        got = u.s3 / "hub-test-bucket-1a2b" / "releases"
        check(sorted(p.name for p in got.iterdir()) == [u.name, f"{u.name}.sha256"], f"{list(got.iterdir())}")
        check(f"ReleaseSha256={u.sha}" in r.stdout, r.stdout)
        check(f"ReleaseLocation=s3://hub-test-bucket-1a2b/releases/{u.name}" in r.stdout, r.stdout)
        check(all(c.startswith("--region eu-west-1 ") for c in u.calls()), f"{u.calls()}")
    finally:
        u.close()


def test_upload_release_dry_run_uploads_nothing():
    u = Upload()
    try:
        r = u.run("--bucket", "my-hub-bucket", "--dry-run")
        check(r.returncode == 0, r.stderr)
        check(u.calls() == [], f"a dry run with --bucket calls nothing: {u.calls()}")
        check(f"s3 cp --only-show-errors dist/{u.name} s3://my-hub-bucket/releases/{u.name}" in r.stderr, r.stderr)
        check(not u.s3.exists(), "nothing uploaded")
        r = u.run("--stack", "hub-test", "--dry-run")
        check(r.returncode == 0 and [c.split()[:2] for c in u.calls()] == [["cloudformation", "describe-stacks"]],
              f"only the read-only lookup runs: {u.calls()}")
    finally:
        u.close()


def test_upload_release_failures():
    u = Upload()
    try:
        r = u.run("--stack", "no-such-stack")
        check(r.returncode != 0 and "cannot read the outputs" in r.stderr, r.stderr)
        r = u.run("--bucket", "b", STUB_AWS_FAIL="1")
        check(r.returncode != 0, "a failed upload fails the script")
        r = u.run("--bucket", "b", "--version", "9.9.9")
        check(r.returncode != 0 and "release.sh" in r.stderr, r.stderr)
        (u.tmp / "dist" / u.name).write_bytes(b"tampered")
        r = u.run("--bucket", "b")
        check(r.returncode != 0 and "does not match" in r.stderr, r.stderr)
        r = u.run("--bucket", "b", "--stack", "s")
        check(r.returncode == 2, "one of --stack and --bucket")
    finally:
        u.close()


if __name__ == "__main__":
    run_tests(globals(), "templates")
