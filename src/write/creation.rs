//! Creation template writes: one create or update, journaled before and after, and its undo
//! by `restore`. An update sends the lifecycle policy and `appliedFor`, plus the template's
//! own tag mutability read just before (the API reference says an update without it sets
//! MUTABLE); every other setting (tags, description, encryption, repository policy, custom
//! role) is left out of the request, so ECR keeps it.

use std::sync::Arc;

use aws_sdk_ecr::types::{
    ImageTagMutability, ImageTagMutabilityExclusionFilter, ImageTagMutabilityExclusionFilterType,
    RctAppliedFor, RepositoryCreationTemplate,
};

use super::journal::{
    Journal, JournalRecord, Recorded, TemplateRestoreEntry, TemplateSettings, WriteResult,
};
use super::INTERRUPTED;
use crate::aws::ecr::describe_creation_templates;
use crate::aws::{AwsError, CallClass, ErrorKind, Target};
use crate::config::creation::prefix_key;
use crate::config::templates::Template;
use crate::config::CreationTemplateRule;
use crate::model::{CreationTemplateResult, TemplateOutcome, TemplateState};

/// Shown on templates ecr-fleet creates.
pub const DESCRIPTION: &str = "managed by ecr-fleet";

/// The prefix and the settings ecr-fleet reads of a template, as the API returns it.
pub fn template_state(t: &RepositoryCreationTemplate) -> (String, TemplateState) {
    let mut applied_for: Vec<String> = t
        .applied_for()
        .iter()
        .map(|a| a.as_str().to_string())
        .collect();
    applied_for.sort();
    applied_for.dedup();
    let state = TemplateState {
        lifecycle_policy: t
            .lifecycle_policy()
            .filter(|p| !p.trim().is_empty())
            .map(str::to_string),
        applied_for,
        image_tag_mutability: t.image_tag_mutability().map(|m| m.as_str().to_string()),
        mutability_exclusion_filters: t
            .image_tag_mutability_exclusion_filters()
            .iter()
            .map(|f| (f.filter_type().as_str().to_string(), f.filter().to_string()))
            .collect(),
    };
    (t.prefix().unwrap_or_default().to_string(), state)
}

/// The template of one prefix now; `None` when there is none.
pub async fn read_template(
    target: &Target,
    prefix: &str,
) -> Result<Option<TemplateState>, AwsError> {
    let found = describe_creation_templates(target, &[prefix.to_string()]).await?;
    Ok(found
        .iter()
        .map(template_state)
        .find(|(p, _)| prefix_key(p) == prefix_key(prefix))
        .map(|(_, state)| state))
}

/// Write one planned row: create or update the template of `rule.prefix` with `template`.
/// `recheck`: read the template again first (time passed since the plan: interactive apply)
/// and write only if it is still what the plan saw.
pub async fn write_template(
    row: &mut CreationTemplateResult,
    rule: &CreationTemplateRule,
    template: &Template,
    target: &Target,
    journal: &Arc<Journal>,
    recheck: bool,
) {
    if target.calls.stop().is_set() {
        row.error = Some(INTERRUPTED.to_string());
        return;
    }
    if recheck {
        match read_template(target, &rule.prefix).await {
            Ok(now) if now == row.current => {}
            Ok(now) => {
                if now
                    .as_ref()
                    .is_some_and(|n| n.holds(Some(&template.text), &rule.applied_for))
                {
                    row.outcome = TemplateOutcome::Unchanged;
                    row.diff = None;
                } else {
                    row.outcome = TemplateOutcome::Error;
                    row.error = Some(
                        "conflict: the creation template changed since the plan; not written (plan again)"
                            .to_string(),
                    );
                }
                return;
            }
            Err(e) => return not_written(row, &e),
        }
    }
    let intent = JournalRecord::TemplateIntent {
        account_id: row.account_id.clone(),
        region: row.region.clone(),
        prefix: rule.prefix.clone(),
        template: template.name.clone(),
        previous: row.current.as_ref().map(|c| TemplateSettings {
            lifecycle_policy: c.lifecycle_policy.clone(),
            applied_for: c.applied_for.clone(),
        }),
        new_policy: template.text.clone(),
        new_applied_for: rule.applied_for.clone(),
    };
    if let Err(e) = journal.append(intent, true).await {
        row.outcome = TemplateOutcome::Error;
        row.error = Some(format!("not written: {e}"));
        return;
    }
    let applied_for = applied_for_values(&rule.applied_for);
    let result = match &row.current {
        None => target
            .calls
            .call(
                CallClass::Write,
                "ecr:CreateRepositoryCreationTemplate",
                || {
                    target
                        .ecr
                        .create_repository_creation_template()
                        .prefix(&rule.prefix)
                        .description(DESCRIPTION)
                        .lifecycle_policy(&template.text)
                        .set_applied_for(Some(applied_for.clone()))
                        .send()
                },
            )
            .await
            .map(|_| ()),
        Some(current) => update(target, &rule.prefix, &template.text, &applied_for, current).await,
    };
    let (result_kind, error_code) = match &result {
        Ok(()) => (WriteResult::Written, None),
        Err(e) if e.kind == ErrorKind::Interrupted => (WriteResult::NotWritten, None),
        Err(e) => (WriteResult::Failed, e.code.clone()),
    };
    let outcome = JournalRecord::TemplateOutcome {
        account_id: row.account_id.clone(),
        region: row.region.clone(),
        prefix: rule.prefix.clone(),
        result: result_kind,
        error_code,
    };
    if let Err(e) = journal.append(outcome, false).await {
        // The intent is on disk; restore looks at the template to learn the rest.
        tracing::warn!(error = %e, "outcome not recorded in the journal");
    }
    match result {
        Ok(()) => row.applied = true,
        Err(e) => not_written(row, &e),
    }
}

/// UpdateRepositoryCreationTemplate with the lifecycle policy and `appliedFor`, and the tag
/// mutability the template has (see the module documentation).
async fn update(
    target: &Target,
    prefix: &str,
    policy: &str,
    applied_for: &[RctAppliedFor],
    current: &TemplateState,
) -> Result<(), AwsError> {
    let mutability = current
        .image_tag_mutability
        .as_deref()
        .map(ImageTagMutability::from);
    let filters: Vec<ImageTagMutabilityExclusionFilter> = current
        .mutability_exclusion_filters
        .iter()
        .filter_map(|(kind, filter)| {
            ImageTagMutabilityExclusionFilter::builder()
                .filter_type(ImageTagMutabilityExclusionFilterType::from(kind.as_str()))
                .filter(filter)
                .build()
                .ok()
        })
        .collect();
    target
        .calls
        .call(
            CallClass::Write,
            "ecr:UpdateRepositoryCreationTemplate",
            || {
                target
                    .ecr
                    .update_repository_creation_template()
                    .prefix(prefix)
                    .lifecycle_policy(policy)
                    .set_applied_for(Some(applied_for.to_vec()))
                    .set_image_tag_mutability(mutability.clone())
                    .set_image_tag_mutability_exclusion_filters(
                        (!filters.is_empty()).then(|| filters.clone()),
                    )
                    .send()
            },
        )
        .await
        .map(|_| ())
}

fn applied_for_values(values: &[String]) -> Vec<RctAppliedFor> {
    values
        .iter()
        .map(|v| RctAppliedFor::from(v.as_str()))
        .collect()
}

fn not_written(row: &mut CreationTemplateResult, e: &AwsError) {
    if e.kind == ErrorKind::Interrupted {
        row.error = Some(INTERRUPTED.to_string());
        return;
    }
    row.outcome = TemplateOutcome::Error;
    row.error = Some(match e.code.as_deref() {
        Some("TemplateAlreadyExistsException") => format!(
            "conflict: a creation template for this prefix was created since the plan; not written (plan again): {e}"
        ),
        Some("TemplateNotFoundException") => format!(
            "conflict: the creation template was deleted since the plan; not written (plan again): {e}"
        ),
        _ => format!("not written: {e}"),
    });
}

/// Undo one creation template write of an earlier apply, only where the template still holds
/// what that apply wrote: put back the earlier lifecycle policy and `appliedFor`, or delete a
/// template the apply created.
pub async fn restore_template(
    entry: &TemplateRestoreEntry,
    target: &Target,
) -> CreationTemplateResult {
    let mut row = CreationTemplateResult::new(
        &entry.account_id,
        &entry.region,
        &entry.prefix,
        Some(entry.template.clone()),
    );
    if entry.recorded == Recorded::NotWritten {
        // The journal says this write failed or never started: nothing to undo.
        row.outcome = TemplateOutcome::Unchanged;
        return row;
    }
    let current = match read_template(target, &entry.prefix).await {
        Ok(c) => c,
        Err(e) => {
            row.error = Some(e.to_string());
            return row;
        }
    };
    let holds = |settings: &TemplateSettings| {
        current
            .as_ref()
            .is_some_and(|c| c.holds(settings.lifecycle_policy.as_deref(), &settings.applied_for))
    };
    // Already as before (restored earlier, or an intent whose write never happened).
    let as_before = match &entry.previous {
        None => current.is_none(),
        Some(previous) => holds(previous),
    };
    if as_before {
        row.outcome = TemplateOutcome::Unchanged;
        return row;
    }
    if !holds(&entry.written) {
        row.error = Some(
            "conflict: the creation template changed since the apply that wrote this journal; left alone"
                .to_string(),
        );
        return row;
    }
    row.outcome = TemplateOutcome::Update;
    row.diff = Some(crate::decide::creation::template_diff(
        current.as_ref(),
        entry
            .previous
            .as_ref()
            .and_then(|p| p.lifecycle_policy.as_deref()),
        entry
            .previous
            .as_ref()
            .map_or(&[][..], |p| p.applied_for.as_slice()),
        "previous",
    ));
    let result = match (&entry.previous, &current) {
        (Some(previous), Some(current)) => {
            // An empty lifecycle policy removes it (the template had none before). The API
            // model allows it: a template's policy text has a minimum length of 0, where
            // PutLifecyclePolicy's has 100.
            let policy = previous.lifecycle_policy.as_deref().unwrap_or("");
            let applied_for = applied_for_values(&previous.applied_for);
            update(target, &entry.prefix, policy, &applied_for, current).await
        }
        // The apply created this template: restoring means deleting it.
        _ => target
            .calls
            .call(
                CallClass::Write,
                "ecr:DeleteRepositoryCreationTemplate",
                || {
                    target
                        .ecr
                        .delete_repository_creation_template()
                        .prefix(&entry.prefix)
                        .send()
                },
            )
            .await
            .map(|_| ()),
    };
    match result {
        Ok(()) => row.applied = true,
        Err(e) => {
            row.outcome = TemplateOutcome::Error;
            row.error = Some(e.to_string());
        }
    }
    row
}
