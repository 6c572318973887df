//! The checks of `doctor` in one account-region: each read a run makes there, made once on
//! the smallest page (and on one repository, when there is one), and, when asked, each write
//! proven allowed without changing anything.
//!
//! The write probe names a repository that does not exist (made sure of first). AWS
//! authorizes a request from its request context, the resource ARN it names included, before
//! the service acts on it (IAM User Guide, "How IAM works"), so `RepositoryNotFoundException`
//! shows the write passed authorization and `AccessDenied` that it did not. Nothing exists
//! to be written, so nothing is. The README's Doctor section states the limits.

use aws_sdk_ecr::config::SharedCredentialsProvider;

use crate::aws::{Aws, AwsError, CallClass, ErrorKind, Target};
use crate::model::{Check, CheckStatus, InUseSource};

/// What to check in an account-region besides the reads every run makes.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// `ecr:DescribeImages` (`[safety]` checks and `--images` read images).
    pub images: bool,
    /// `[safety] in_use`.
    pub in_use: Vec<InUseSource>,
    pub write_access: bool,
}

/// Whose policy grants the actions: the caller's in its own account, the spoke role's
/// elsewhere.
#[derive(Debug, Clone, Copy)]
pub enum Grantee {
    Caller,
    SpokeRole,
}

impl Grantee {
    fn policy(self) -> &'static str {
        match self {
            Grantee::Caller => "the caller's policy (docs/iam/hub-policy.json)",
            Grantee::SpokeRole => "the spoke role's policy (docs/iam/spoke-policy.json)",
        }
    }
}

/// The IAM action of an operation (the tagging API's actions are `tag:`).
fn iam_action(operation: &str) -> String {
    match operation.strip_prefix("tagging:") {
        Some(op) => format!("tag:{op}"),
        None => operation.to_string(),
    }
}

/// What to change after an error of `operation`.
pub fn fix_for(error: &AwsError, grantee: Grantee) -> String {
    let action = iam_action(error.operation);
    match error.kind {
        ErrorKind::AccessDenied => format!(
            "add {action} to {} (or lift the SCP or permissions boundary that denies it)",
            grantee.policy()
        ),
        ErrorKind::Throttling | ErrorKind::Transient => {
            "the service did not answer in time: check the network and the endpoint, then run \
             doctor again"
                .to_string()
        }
        ErrorKind::Credentials => {
            "the session's credentials could not be used: see the error, then run doctor again"
                .to_string()
        }
        _ => format!(
            "see the error: {action} must succeed for a run; `ecr-fleet doctor -v` shows the \
             SDK's own log"
        ),
    }
}

/// A valid lifecycle policy for the write probe (never stored: the repository is absent).
const PROBE_POLICY: &str = r#"{"rules":[{"rulePriority":1,"description":"ecr-fleet doctor write probe","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}"#;

struct Rows<'a> {
    target: &'a Target,
    grantee: Grantee,
    rows: Vec<Check>,
}

impl Rows<'_> {
    fn row(&self, check: &str, action: &str, status: CheckStatus) -> Check {
        Check::new(check, action, status).at(&self.target.account_id, Some(&self.target.region))
    }

    fn pass(&mut self, check: &str, action: &str, detail: impl Into<String>) {
        let row = self.row(check, action, CheckStatus::Pass).detail(detail);
        self.rows.push(row);
    }

    fn skip(&mut self, check: &str, action: &str, detail: impl Into<String>) {
        let row = self.row(check, action, CheckStatus::Skip).detail(detail);
        self.rows.push(row);
    }

    fn fail(&mut self, check: &str, error: &AwsError) {
        let row = self
            .row(check, &iam_action(error.operation), CheckStatus::Fail)
            .failed(error.detail.clone(), fix_for(error, self.grantee));
        self.rows.push(row);
    }

    /// A pass with `detail`, or a fail naming the error; the answer when it passed.
    fn outcome<T>(
        &mut self,
        check: &str,
        action: &str,
        result: Result<T, AwsError>,
        detail: impl FnOnce(&T) -> String,
    ) -> Option<T> {
        match result {
            Ok(value) => {
                let text = detail(&value);
                self.pass(check, action, text);
                Some(value)
            }
            Err(e) => {
                self.fail(check, &e);
                None
            }
        }
    }
}

/// Every check of one account-region. `credentials` are the spoke role's (`None` in the
/// caller's own account).
pub async fn account_region(
    aws: &Aws,
    target: &Target,
    credentials: Option<&SharedCredentialsProvider>,
    grantee: Grantee,
    options: &ProbeOptions,
) -> Vec<Check> {
    let mut rows = Rows {
        target,
        grantee,
        rows: Vec::new(),
    };
    reads(target, &mut rows, options.images).await;
    in_use(aws, target, credentials, &mut rows, &options.in_use).await;
    if options.write_access {
        writes(target, &mut rows).await;
    }
    rows.rows
}

const READ: &str = "read";
const NO_REPOSITORY: &str = "no repository in this account-region to try it on";

/// The reads of the inventory: repositories, tags (bulk and per repository), the policy of
/// one repository, its images when a run reads them, and the creation templates.
async fn reads(target: &Target, rows: &mut Rows<'_>, images: bool) {
    let calls = &target.calls;
    let listed = calls
        .call(CallClass::Read, "ecr:DescribeRepositories", || {
            target.ecr.describe_repositories().max_results(1).send()
        })
        .await;
    let repo = rows
        .outcome(READ, "ecr:DescribeRepositories", listed, |_| {
            "repositories can be listed".to_string()
        })
        .map(|page| {
            page.repositories().first().and_then(|r| {
                Some((
                    r.repository_name()?.to_string(),
                    r.repository_arn()?.to_string(),
                ))
            })
        });
    let tags = calls
        .call(CallClass::TagPage, "tagging:GetResources", || {
            target
                .tagging
                .get_resources()
                .resource_type_filters("ecr:repository")
                .resources_per_page(1)
                .send()
        })
        .await;
    if let Err(e) = &tags {
        if e.kind == ErrorKind::AccessDenied {
            let fix = format!(
                "{} (without it a run still works, reading tags one repository at a time)",
                fix_for(e, rows.grantee)
            );
            let row = rows
                .row(READ, "tag:GetResources", CheckStatus::Fail)
                .failed(e.detail.clone(), fix);
            rows.rows.push(row);
        } else {
            rows.fail(READ, e);
        }
    } else {
        rows.pass(READ, "tag:GetResources", "tags can be read in bulk");
    }
    let per_repo = [
        "ecr:ListTagsForResource",
        "ecr:GetLifecyclePolicy",
        "ecr:DescribeImages",
    ];
    let Some(Some((name, arn))) = repo else {
        let why = if repo.is_some() {
            NO_REPOSITORY
        } else {
            "needs ecr:DescribeRepositories"
        };
        for action in per_repo
            .iter()
            .filter(|a| images || !a.ends_with("DescribeImages"))
        {
            rows.skip(READ, action, why);
        }
        templates(target, rows).await;
        return;
    };
    let on = format!("on {name}");
    let tags = calls
        .call(CallClass::Read, "ecr:ListTagsForResource", || {
            target
                .ecr
                .list_tags_for_resource()
                .resource_arn(&arn)
                .send()
        })
        .await;
    rows.outcome(READ, "ecr:ListTagsForResource", tags, |_| on.clone());
    let policy = calls
        .call(CallClass::Read, "ecr:GetLifecyclePolicy", || {
            target
                .ecr
                .get_lifecycle_policy()
                .repository_name(&name)
                .send()
        })
        .await;
    match policy {
        Err(e) if e.kind == ErrorKind::PolicyNotFound => rows.pass(
            READ,
            "ecr:GetLifecyclePolicy",
            format!("{on}: LifecyclePolicyNotFoundException (no policy), so the read is allowed"),
        ),
        other => {
            rows.outcome(READ, "ecr:GetLifecyclePolicy", other, |_| on.clone());
        }
    }
    if images {
        let described = calls
            .call(CallClass::Read, "ecr:DescribeImages", || {
                target
                    .ecr
                    .describe_images()
                    .repository_name(&name)
                    .max_results(1)
                    .send()
            })
            .await;
        rows.outcome(READ, "ecr:DescribeImages", described, |_| on.clone());
    }
    templates(target, rows).await;
}

async fn templates(target: &Target, rows: &mut Rows<'_>) {
    let listed = target
        .calls
        .call(
            CallClass::Read,
            "ecr:DescribeRepositoryCreationTemplates",
            || {
                target
                    .ecr
                    .describe_repository_creation_templates()
                    .max_results(1)
                    .send()
            },
        )
        .await;
    rows.outcome(
        READ,
        "ecr:DescribeRepositoryCreationTemplates",
        listed,
        |_| "repository creation templates can be listed".to_string(),
    );
}

const IN_USE: &str = "in use";

/// The first call of each configured in-use source, and the calls that follow it on what the
/// first one found (a cluster's services and tasks, an image function).
async fn in_use(
    aws: &Aws,
    target: &Target,
    credentials: Option<&SharedCredentialsProvider>,
    rows: &mut Rows<'_>,
    sources: &[InUseSource],
) {
    let (account, region) = (target.account_id.as_str(), target.region.as_str());
    for source in sources {
        match source {
            InUseSource::Ecs => {
                let ecs = aws.ecs(account, region, credentials);
                let at = aws.endpoint("ecs", region);
                let clusters = ecs.list_clusters().max_results(1).send().await;
                let clusters =
                    clusters.map_err(|e| AwsError::from_sdk("ecs:ListClusters", &e, &at));
                let Some(page) = rows.outcome(IN_USE, "ecs:ListClusters", clusters, |_| {
                    "ECS clusters can be listed".to_string()
                }) else {
                    continue;
                };
                let Some(cluster) = page.cluster_arns().first() else {
                    rows.skip(IN_USE, "ecs:ListServices", "no ECS cluster to try it on");
                    rows.skip(IN_USE, "ecs:ListTasks", "no ECS cluster to try it on");
                    continue;
                };
                let services = ecs
                    .list_services()
                    .cluster(cluster)
                    .max_results(1)
                    .send()
                    .await;
                let services =
                    services.map_err(|e| AwsError::from_sdk("ecs:ListServices", &e, &at));
                rows.outcome(IN_USE, "ecs:ListServices", services, |_| {
                    format!("on cluster {cluster}")
                });
                let tasks = ecs
                    .list_tasks()
                    .cluster(cluster)
                    .max_results(1)
                    .send()
                    .await;
                let tasks = tasks.map_err(|e| AwsError::from_sdk("ecs:ListTasks", &e, &at));
                rows.outcome(IN_USE, "ecs:ListTasks", tasks, |_| {
                    format!("on cluster {cluster}")
                });
            }
            InUseSource::Lambda => {
                let lambda = aws.lambda(account, region, credentials);
                let at = aws.endpoint("lambda", region);
                let listed = lambda.list_functions().max_items(50).send().await;
                let listed =
                    listed.map_err(|e| AwsError::from_sdk("lambda:ListFunctions", &e, &at));
                let Some(page) = rows.outcome(IN_USE, "lambda:ListFunctions", listed, |_| {
                    "Lambda functions can be listed".to_string()
                }) else {
                    continue;
                };
                let image = page
                    .functions()
                    .iter()
                    .find(|f| f.package_type() == Some(&aws_sdk_lambda::types::PackageType::Image));
                let Some(name) = image.and_then(|f| f.function_name()) else {
                    rows.skip(
                        IN_USE,
                        "lambda:GetFunction",
                        "no image function on the first page to try it on",
                    );
                    continue;
                };
                let got = lambda.get_function().function_name(name).send().await;
                let got = got.map_err(|e| AwsError::from_sdk("lambda:GetFunction", &e, &at));
                rows.outcome(IN_USE, "lambda:GetFunction", got, |_| format!("on {name}"));
            }
            InUseSource::Inspector => {
                let inspector = aws.inspector2(account, region, credentials);
                let at = aws.endpoint("inspector2", region);
                let covered = inspector.list_coverage().max_results(1).send().await;
                let covered =
                    covered.map_err(|e| AwsError::from_sdk("inspector2:ListCoverage", &e, &at));
                rows.outcome(IN_USE, "inspector2:ListCoverage", covered, |_| {
                    "Inspector coverage can be listed".to_string()
                });
            }
        }
    }
}

const WRITE: &str = "write";

/// The writes of apply and restore, each on a repository that does not exist.
async fn writes(target: &Target, rows: &mut Rows<'_>) {
    let probe = format!("ecr-fleet-doctor-probe/absent-{:016x}", fastrand::u64(..));
    let actions = ["ecr:PutLifecyclePolicy", "ecr:DeleteLifecyclePolicy"];
    // Make sure first that the probe's repository is absent: a write to it must not land.
    let exists = target
        .calls
        .call(CallClass::Read, "ecr:DescribeRepositories", || {
            target
                .ecr
                .describe_repositories()
                .repository_names(&probe)
                .send()
        })
        .await;
    match exists {
        Err(e) if e.kind == ErrorKind::RepositoryNotFound => {}
        Ok(_) => {
            for action in actions {
                rows.skip(WRITE, action, format!("{probe} exists: not probed"));
            }
            return;
        }
        Err(e) => {
            for action in actions {
                rows.skip(
                    WRITE,
                    action,
                    format!("cannot make sure that {probe} is absent: {e}"),
                );
            }
            return;
        }
    }
    let put = target
        .calls
        .call(CallClass::Write, "ecr:PutLifecyclePolicy", || {
            target
                .ecr
                .put_lifecycle_policy()
                .repository_name(&probe)
                .lifecycle_policy_text(PROBE_POLICY)
                .send()
        })
        .await
        .map(|_| ());
    probe_outcome(rows, "ecr:PutLifecyclePolicy", &probe, put);
    let delete = target
        .calls
        .call(CallClass::Write, "ecr:DeleteLifecyclePolicy", || {
            target
                .ecr
                .delete_lifecycle_policy()
                .repository_name(&probe)
                .send()
        })
        .await
        .map(|_| ());
    probe_outcome(rows, "ecr:DeleteLifecyclePolicy", &probe, delete);
}

fn probe_outcome(rows: &mut Rows<'_>, action: &str, probe: &str, result: Result<(), AwsError>) {
    match result {
        Err(e) if e.kind == ErrorKind::RepositoryNotFound => rows.pass(
            WRITE,
            action,
            format!("authorized: RepositoryNotFoundException for {probe}, which does not exist"),
        ),
        Err(e) => rows.fail(WRITE, &e),
        Ok(()) => {
            let row = rows.row(WRITE, action, CheckStatus::Fail).failed(
                format!("{action} on {probe} succeeded: the repository appeared during the check"),
                format!("delete the repository {probe}"),
            );
            rows.rows.push(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagging_operations_are_tag_actions() {
        assert_eq!(iam_action("tagging:GetResources"), "tag:GetResources");
        assert_eq!(
            iam_action("ecr:GetLifecyclePolicy"),
            "ecr:GetLifecyclePolicy"
        );
    }

    #[test]
    fn access_denied_names_the_action_and_the_policy() {
        let e = AwsError {
            operation: "ecr:GetLifecyclePolicy",
            kind: ErrorKind::AccessDenied,
            code: Some("AccessDeniedException".into()),
            detail: "AccessDeniedException: no".into(),
        };
        let fix = fix_for(&e, Grantee::SpokeRole);
        assert!(fix.starts_with("add ecr:GetLifecyclePolicy to the spoke role's policy (docs/iam/spoke-policy.json)"), "{fix}");
        assert!(fix_for(&e, Grantee::Caller).contains("hub-policy.json"));
    }

    #[test]
    fn the_probe_policy_is_valid() {
        assert!(ecr_lifecycle::parse_policy(PROBE_POLICY).is_ok());
    }
}
