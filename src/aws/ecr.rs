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
