#!/usr/bin/env python3
"""The plain boto3 script a team writes before it reaches for a tool: the baseline of the
fleet benchmark (tests/e2e/bench.rs).

For every ACTIVE account of the organization (assuming ROLE in each member account) and
every region: list the repositories, and for each one whose name matches the glob, read
its tags, skip it when it carries the exemption tag, read its lifecycle policy and put the
template when the policy differs (compared as JSON values, so whitespace does not count).
Account-regions run on a small thread pool. boto3's own retry settings are left as they
are, as such a script would leave them. The endpoint, credentials and region come from the
standard AWS environment (AWS_ENDPOINT_URL, ...).

Prints one JSON object on stdout: accounts, repositories, matched, exempt, written,
unchanged and the errors met.
"""

import argparse
import concurrent.futures
import fnmatch
import json
import sys

import boto3


def account_regions(session, regions):
    caller = session.client("sts").get_caller_identity()["Account"]
    org = session.client("organizations")
    for page in org.get_paginator("list_accounts").paginate():
        for account in page["Accounts"]:
            if account.get("Status") != "ACTIVE":
                continue
            for region in regions:
                yield caller, account["Id"], region


def member_session(caller, account, region, role_name):
    # A session per thread: boto3 sessions are not thread-safe.
    session = boto3.session.Session(region_name=region)
    if account == caller:
        return session
    credentials = session.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{role_name}",
        RoleSessionName="boto3-loop",
    )["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def converge(caller, account, region, args, template):
    counts = {"repositories": 0, "matched": 0, "exempt": 0, "written": 0, "unchanged": 0}
    ecr = member_session(caller, account, region, args.role_name).client("ecr")
    for page in ecr.get_paginator("describe_repositories").paginate():
        for repo in page["repositories"]:
            counts["repositories"] += 1
            name = repo["repositoryName"]
            if not any(fnmatch.fnmatchcase(name, glob) for glob in args.names):
                continue
            counts["matched"] += 1
            tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
            if any(tag["Key"] == args.exempt_tag for tag in tags):
                counts["exempt"] += 1
                continue
            try:
                text = ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]
                current = json.loads(text)
            except ecr.exceptions.LifecyclePolicyNotFoundException:
                current = None
            if current == template:
                counts["unchanged"] += 1
                continue
            ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps(template))
            counts["written"] += 1
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", required=True, help="lifecycle policy JSON file")
    parser.add_argument("--names", action="append", required=True, help="repository-name glob")
    parser.add_argument("--regions", action="append", required=True)
    parser.add_argument("--role-name", default="EcrFleetSpoke")
    parser.add_argument("--exempt-tag", default="ecr-fleet:exempt")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    with open(args.template) as f:
        template = json.load(f)

    session = boto3.session.Session()
    totals = {"accounts": set(), "repositories": 0, "matched": 0, "exempt": 0,
              "written": 0, "unchanged": 0, "errors": []}
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = {
            pool.submit(converge, caller, account, region, args, template):
                (account, region)
            for caller, account, region in account_regions(session, args.regions)
        }
        for future in concurrent.futures.as_completed(futures):
            account, region = futures[future]
            totals["accounts"].add(account)
            try:
                for key, value in future.result().items():
                    totals[key] += value
            except Exception as error:  # report every failure, keep going with the rest
                totals["errors"].append(f"{account}/{region}: {error}")
    totals["accounts"] = len(totals["accounts"])
    json.dump(totals, sys.stdout)
    print()
    return 1 if totals["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
