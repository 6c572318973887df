//! Help text beyond the flags: examples, exit codes, environment. `--help` and the man pages
//! (`commands::docs`) show the same text.

pub const MAIN_EXAMPLES: &str =
    "  ecr-fleet plan                         # read-only; ecr-fleet.toml or built-in default
  ecr-fleet doctor --write-access        # what a run lacks (roles, permissions), and the fix
  ecr-fleet plan --output markdown --report plan.json
  ecr-fleet apply --yes --report apply.json --junit apply.xml
  ecr-fleet audit --images --output junit > audit.xml
  ecr-fleet audit --images --report audit.json --html audit.html
  ecr-fleet restore --backup ecr-fleet-journal-20261122T100009Z.jsonl --yes
  ecr-fleet plan --shard 2/3 --report plan-2.json  # one of three parallel runs
  ecr-fleet report merge plan-1.json plan-2.json plan-3.json > plan.json
  ecr-fleet completions bash > ~/.local/share/bash-completion/completions/ecr-fleet";

pub const EXIT_CODES: &str =
    "  0  success: nothing pending (plan, audit) or every change applied (apply, restore)
  1  the run finished, but some accounts, regions or repositories failed
  2  invalid input or usage (CLI, config, template, policy, backup file); nothing was changed
  3  plan/audit found changes pending or findings";

pub const ENVIRONMENT: &str = "  ECR_FLEET_CONFIG   config file when --config is not given
  RUST_LOG           log filter, overrides -v/-q
  NO_COLOR           no colour in logs
  AWS credentials, profile, region and endpoint come from the standard AWS environment
  (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...) and config files.";

/// `ecr-fleet --help` after the flags.
pub fn main_after_help() -> String {
    format!(
        "Examples:\n{MAIN_EXAMPLES}\n\nExit codes:\n{EXIT_CODES}\n\nEnvironment:\n{ENVIRONMENT}"
    )
}

pub const PLAN_EXAMPLES: &str = "\
Examples:
  ecr-fleet plan                                   # ecr-fleet.toml or built-in default
  ecr-fleet plan --config fleet.toml --output markdown --report plan.json
  ecr-fleet plan --accounts 111111111111 --regions eu-west-1 --repositories 'team-a/*'
  ecr-fleet plan --output junit > plan.xml         # drift as failed test cases
  ecr-fleet plan --output html > plan.html         # one page, charts included
  ecr-fleet plan --shard 1/3 --report plan-1.json  # shard 1 of 3; see `report merge`";

pub const APPLY_EXAMPLES: &str = "\
Examples:
  ecr-fleet apply                                  # shows the plan, asks before writing
  ecr-fleet apply --yes --config fleet.toml --report apply.json --junit apply.xml
  ecr-fleet apply --yes --output json --html apply.html
  ecr-fleet apply --yes --backup before.json --accounts 111111111111
  ecr-fleet apply --yes --use-builtin-default      # no config file, on purpose";

pub const AUDIT_EXAMPLES: &str = "\
Examples:
  ecr-fleet audit --output markdown > audit.md
  ecr-fleet audit --images --price-per-gb-month 0.10 --report audit.json
  ecr-fleet audit --output junit > audit.xml       # findings and drift as failed test cases
  ecr-fleet audit --images --html audit.html       # savings per account and finding";

pub const DEMO_EXAMPLES: &str = "\
Examples:
  ecr-fleet demo                                   # plan a simulated organization
  ecr-fleet demo apply                             # write into it (nothing real is touched)
  ecr-fleet demo audit --output markdown           # findings and the saving of the template
  ecr-fleet demo restore                           # an apply, then the restore of its journal
  ecr-fleet demo apply --accounts 20 --repos 100 --throttle 30   # ride out throttling
  ecr-fleet demo apply --quotas -v                 # meet per account-region quotas

The organization is generated from --seed and served on 127.0.0.1 for the run only: no AWS
account, no credentials, no network. Every outcome shows: create, update, unchanged, excluded,
unmatched, blocked (an image a Lambda function runs), a suspended account left out, and
repository creation templates.";

pub const DOCTOR_EXAMPLES: &str = "\
Examples:
  ecr-fleet doctor                                 # ecr-fleet.toml or built-in default
  ecr-fleet doctor --config fleet.toml --write-access
  ecr-fleet doctor --accounts 111111111111 --regions eu-west-1 --output json

One row per check: credentials (sts:GetCallerIdentity), the account listing, the spoke role of
each account (AssumeRole with the configured session duration and external id), the enabled
regions when asked, and in each account-region every read a run makes (repositories, tags,
lifecycle policy, creation templates, images with [safety], each [safety] in_use source).
--write-access tries ecr:PutLifecyclePolicy and ecr:DeleteLifecyclePolicy on a repository that
does not exist: RepositoryNotFoundException proves the write is allowed, AccessDenied that it
is not; nothing is written. Exit 0 when every check passes, 1 when any fails (each failure
names account, region, action and the fix), 2 for a bad config or usage.";

pub const RESTORE_EXAMPLES: &str = "\
Examples:
  ecr-fleet restore --backup ecr-fleet-journal-20261122T100009Z.jsonl
  ecr-fleet restore --backup ecr-fleet-journal-20261122T100009Z.jsonl --yes --report restore.json
  ecr-fleet restore --backup ecr-fleet-journal-20261122T100009Z.jsonl --yes --html restore.html";

pub const MERGE_EXAMPLES: &str = "\
Examples:
  ecr-fleet plan --shard 1/2 --report plan-1.json  # in one build
  ecr-fleet plan --shard 2/2 --report plan-2.json  # in another
  ecr-fleet report merge plan-1.json plan-2.json --report plan.json
  ecr-fleet report merge plan-*.json --output markdown --html plan.html  # the organization's page

The merged report is the report of one unsharded run (rows joined, counts tallied, regions
the union of the shards'), but for started_at (the earliest), finished_at (the latest), and
summary.api_calls/api_retries (summed: each shard lists the organization and identifies the
caller once). Inputs that are not reports of this schema_version, cover the same
account-region, come from different commands or shard counts exit 2.";

pub const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  ecr-fleet completions bash > ~/.local/share/bash-completion/completions/ecr-fleet
  ecr-fleet completions zsh > ~/.zfunc/_ecr-fleet
  ecr-fleet completions fish > ~/.config/fish/completions/ecr-fleet.fish";

pub const MAN_EXAMPLES: &str = "\
Examples:
  ecr-fleet man > ecr-fleet.1 && man ./ecr-fleet.1
  ecr-fleet man --dir /usr/local/share/man/man1";
