//! Creation templates of one account-region, beside its repositories: one
//! DescribeRepositoryCreationTemplates, the plan, and the writes of `apply`.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;

use crate::aws::ecr::describe_creation_templates;
use crate::aws::{ErrorKind, Target};
use crate::config::Config;
use crate::decide::creation::{plan_templates, ExistingTemplate, TemplatePlan};
use crate::model::{CreationTemplateResult, Notice, TemplateOutcome};
use crate::progress::Progress;
use crate::write::creation::{template_state, write_template};
use crate::write::journal::Journal;

/// Whether a run reads creation templates: when the config names some, and always in
/// `audit` (its `no_creation_template` finding looks at every account-region).
pub fn wanted(config: &Config, findings: bool) -> bool {
    findings || !config.creation_templates.is_empty()
}

/// Read and plan the creation templates of one account-region. A read that fails is an
/// `error` row per configured prefix; with no configured prefix (an `audit` that only looks),
/// it is a notice instead: the finding is unknown there, and a spoke role without
/// `ecr:DescribeRepositoryCreationTemplates` should not fail a run that asks nothing of them.
pub async fn plan_target(
    target: &Target,
    config: &Config,
    findings: bool,
) -> (TemplatePlan, Option<Notice>) {
    match describe_creation_templates(target, &[]).await {
        Ok(listed) => {
            let existing: Vec<ExistingTemplate> = listed
                .iter()
                .map(|t| {
                    let (prefix, state) = template_state(t);
                    ExistingTemplate { prefix, state }
                })
                .collect();
            let plan = plan_templates(
                &target.account_id,
                &target.region,
                Ok(&existing),
                config,
                findings,
            );
            (plan, None)
        }
        Err(e) if config.creation_templates.is_empty() && e.kind != ErrorKind::Interrupted => {
            tracing::warn!(account = %target.account_id, region = %target.region, error = %e, "creation templates not read");
            let notice = Notice {
                account_id: target.account_id.clone(),
                region: target.region.clone(),
                message: format!(
                    "creation templates not read (no_creation_template not checked): {e}"
                ),
            };
            (TemplatePlan::default(), Some(notice))
        }
        Err(e) => {
            let error = e.to_string();
            let plan = plan_templates(
                &target.account_id,
                &target.region,
                Err(&error),
                config,
                findings,
            );
            (plan, None)
        }
    }
}

/// Write the `create` and `update` rows of one account-region. `recheck`: read each template
/// again first (interactive apply, after the confirmation).
pub async fn write_rows(
    rows: &mut [CreationTemplateResult],
    config: &Config,
    target: &Target,
    journal: &Arc<Journal>,
    recheck: bool,
) {
    for row in rows.iter_mut().filter(|r| r.outcome.is_write()) {
        let rule = config
            .creation_templates
            .iter()
            .find(|c| c.prefix == row.prefix);
        let template = rule.and_then(|r| config.templates.get(&r.template));
        match (rule, template) {
            (Some(rule), Some(template)) => {
                write_template(row, rule, template, target, journal, recheck).await
            }
            _ => {
                row.outcome = TemplateOutcome::Error;
                row.error = Some("template not loaded".to_string());
            }
        }
    }
}

/// Interactive apply: the writes after the confirmation, account-regions side by side.
pub async fn write_planned(
    rows: &mut [CreationTemplateResult],
    config: &Config,
    targets: &HashMap<(String, String), Target>,
    journal: &Arc<Journal>,
    progress: &Progress,
) {
    let mut by_target: HashMap<(String, String), Vec<&mut CreationTemplateResult>> = HashMap::new();
    for row in rows.iter_mut().filter(|r| r.outcome.is_write()) {
        by_target
            .entry((row.account_id.clone(), row.region.clone()))
            .or_default()
            .push(row);
    }
    futures::stream::iter(by_target)
        .for_each_concurrent(None, |(key, rows)| async move {
            for row in rows {
                match targets.get(&key) {
                    Some(target) => {
                        write_rows(std::slice::from_mut(row), config, target, journal, true).await
                    }
                    None => {
                        row.outcome = TemplateOutcome::Error;
                        row.error = Some("no client for this account-region".to_string());
                    }
                }
                progress.step();
            }
        })
        .await;
}
