//! ECR reads shared by the inventory, the writes and restore: one repository's tags and its
//! current lifecycle policy.

use std::collections::BTreeMap;

use super::{AwsError, CallClass, ErrorKind, Slot, Target};

/// Tags of one repository (DescribeRepositories does not return them).
pub async fn read_tags(target: &Target, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
    read_tags_in(target, arn, Slot::paced(CallClass::Read)).await
}

/// [`read_tags`], whose first attempt goes in `slot`.
pub async fn read_tags_in(
    target: &Target,
    arn: &str,
    slot: Slot,
) -> Result<BTreeMap<String, String>, AwsError> {
    let out = target
        .calls
        .call_in(slot, "ecr:ListTagsForResource", || {
            target.ecr.list_tags_for_resource().resource_arn(arn).send()
        })
        .await?;
    Ok(out
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect())
}

/// The current policy text; `None` when the repository has none.
pub async fn read_policy(target: &Target, repository: &str) -> Result<Option<String>, AwsError> {
    match target
        .calls
        .call(CallClass::Read, "ecr:GetLifecyclePolicy", || {
            target
                .ecr
                .get_lifecycle_policy()
                .repository_name(repository)
                .send()
        })
        .await
    {
        Ok(out) => Ok(out.lifecycle_policy_text().map(str::to_string)),
        Err(e) if e.kind == ErrorKind::PolicyNotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The repository creation templates of the account-region (all of them when `prefixes` is
/// empty), page by page through the call gate so that each page is paced, retried and
/// counted like any other call.
pub async fn describe_creation_templates(
    target: &Target,
    prefixes: &[String],
) -> Result<Vec<aws_sdk_ecr::types::RepositoryCreationTemplate>, AwsError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = target
            .calls
            .call(
                CallClass::Read,
                "ecr:DescribeRepositoryCreationTemplates",
                || {
                    target
                        .ecr
                        .describe_repository_creation_templates()
                        .set_prefixes((!prefixes.is_empty()).then(|| prefixes.to_vec()))
                        .max_results(1000)
                        .set_next_token(token.clone())
                        .send()
                },
            )
            .await?;
        out.extend(page.repository_creation_templates().iter().cloned());
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(out)
}
