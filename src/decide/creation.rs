//! Creation templates of one account-region: from the templates read to one row per template
//! (`create`, `update`, `unchanged` for the configured prefixes, `unmanaged` for the others),
//! and the `no_creation_template` finding of `audit`. Pure: no AWS, no I/O.

use super::diff::labelled_diff;
use crate::config::creation::{prefix_key, ROOT_PREFIX};
use crate::config::Config;
use crate::model::{
    CreationTemplateResult, Finding, RegionFinding, TemplateOutcome, TemplateState,
};

/// A creation template as DescribeRepositoryCreationTemplates lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingTemplate {
    pub prefix: String,
    pub state: TemplateState,
}

/// What the run needs from one account-region's creation templates.
#[derive(Debug, Default)]
pub struct TemplatePlan {
    /// Sorted by prefix.
    pub rows: Vec<CreationTemplateResult>,
    pub finding: Option<RegionFinding>,
}

/// Plan the creation templates of one account-region. `read` is the listing, or the error
/// that kept it from being read: then each configured prefix is an `error` row and no finding
/// is made (nothing is known). `findings`: compute the `audit` finding.
pub fn plan_templates(
    account_id: &str,
    region: &str,
    read: Result<&[ExistingTemplate], &str>,
    config: &Config,
    findings: bool,
) -> TemplatePlan {
    let existing = match read {
        Ok(existing) => existing,
        Err(error) => {
            let mut rows: Vec<CreationTemplateResult> = config
                .creation_templates
                .iter()
                .map(|rule| {
                    let mut row = CreationTemplateResult::new(
                        account_id,
                        region,
                        &rule.prefix,
                        Some(rule.template.clone()),
                    );
                    row.error = Some(error.to_string());
                    row
                })
                .collect();
            rows.sort_by(|a, b| a.prefix.cmp(&b.prefix));
            return TemplatePlan {
                rows,
                finding: None,
            };
        }
    };
    let find = |prefix: &str| {
        existing
            .iter()
            .find(|t| prefix_key(&t.prefix) == prefix_key(prefix))
    };
    let mut rows = Vec::new();
    for rule in &config.creation_templates {
        let mut row = CreationTemplateResult::new(
            account_id,
            region,
            &rule.prefix,
            Some(rule.template.clone()),
        );
        let Some(template) = config.templates.get(&rule.template) else {
            row.error = Some("template not loaded".to_string());
            rows.push(row);
            continue;
        };
        let current = find(&rule.prefix).map(|t| t.state.clone());
        row.outcome = match &current {
            None => TemplateOutcome::Create,
            Some(state) if state.holds(Some(&template.text), &rule.applied_for) => {
                TemplateOutcome::Unchanged
            }
            Some(_) => TemplateOutcome::Update,
        };
        if row.outcome.is_write() {
            row.diff = Some(template_diff(
                current.as_ref(),
                Some(&template.text),
                &rule.applied_for,
                "template",
            ));
        }
        row.current = current;
        rows.push(row);
    }
    for t in existing {
        let managed = config
            .creation_templates
            .iter()
            .any(|rule| prefix_key(&rule.prefix) == prefix_key(&t.prefix));
        if !managed {
            let mut row = CreationTemplateResult::new(account_id, region, &t.prefix, None);
            row.outcome = TemplateOutcome::Unmanaged;
            rows.push(row);
        }
    }
    rows.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    let finding = (findings && !covered(existing, config)).then(|| RegionFinding {
        account_id: account_id.to_string(),
        region: region.to_string(),
        finding: Finding::NoCreationTemplate,
    });
    TemplatePlan { rows, finding }
}

/// New repositories get a lifecycle policy at birth when a `ROOT` template has one, or, when
/// the config names prefixes, when every one of them has a template with one.
fn covered(existing: &[ExistingTemplate], config: &Config) -> bool {
    let has_policy = |prefix: &str| {
        existing.iter().any(|t| {
            prefix_key(&t.prefix) == prefix_key(prefix)
                && t.state
                    .lifecycle_policy
                    .as_deref()
                    .is_some_and(|p| !p.trim().is_empty())
        })
    };
    has_policy(ROOT_PREFIX)
        || (!config.creation_templates.is_empty()
            && config
                .creation_templates
                .iter()
                .all(|rule| has_policy(&rule.prefix)))
}

/// The diff of a template's lifecycle policy (canonical forms, as for repositories), then its
/// `appliedFor` when that changes. `None` on the left: no template yet.
pub fn template_diff(
    current: Option<&TemplateState>,
    policy: Option<&str>,
    applied_for: &[String],
    label: &str,
) -> String {
    let before = current.and_then(|c| c.lifecycle_policy.as_deref());
    let mut diff = if current.is_some() && before.is_some() == policy.is_some() {
        match (before, policy) {
            (Some(a), Some(b)) if ecr_lifecycle::semantically_equal(a, b) => String::new(),
            _ => labelled_diff(before, policy, label),
        }
    } else {
        labelled_diff(before, policy, label)
    };
    let old_for = current.map(|c| c.applied_for.join(", "));
    let new_for = applied_for.join(", ");
    if old_for.as_deref() != Some(new_for.as_str()) {
        if let Some(old) = old_for {
            diff.push_str(&format!("-appliedFor: [{old}]\n"));
        }
        diff.push_str(&format!("+appliedFor: [{new_for}]\n"));
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CreationTemplateRule;

    const POLICY: &str = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}"#;
    const OTHER: &str = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":3},"action":{"type":"expire"}}]}"#;

    fn all() -> Vec<String> {
        ["CREATE_ON_PUSH", "PULL_THROUGH_CACHE", "REPLICATION"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// The built-in config with the built-in template on `prefixes`.
    fn config(prefixes: &[&str]) -> Config {
        let mut c = Config::builtin(vec!["us-east-1".into()]);
        c.creation_templates = prefixes
            .iter()
            .map(|p| CreationTemplateRule {
                prefix: p.to_string(),
                template: "untagged-cleanup".into(),
                applied_for: all(),
            })
            .collect();
        c
    }

    fn existing(prefix: &str, policy: Option<&str>, applied_for: Vec<String>) -> ExistingTemplate {
        ExistingTemplate {
            prefix: prefix.into(),
            state: TemplateState {
                lifecycle_policy: policy.map(str::to_string),
                applied_for,
                ..TemplateState::default()
            },
        }
    }

    fn builtin_text(c: &Config) -> String {
        c.templates.get("untagged-cleanup").unwrap().text.clone()
    }

    fn outcomes(plan: &TemplatePlan) -> Vec<(&str, TemplateOutcome)> {
        plan.rows
            .iter()
            .map(|r| (r.prefix.as_str(), r.outcome))
            .collect()
    }

    #[test]
    fn absent_differs_same_and_other_prefixes() {
        let c = config(&["ROOT", "team-a", "team-b", "team-c/"]);
        let text = builtin_text(&c);
        let read = vec![
            // Semantically the same policy, and the same set in another order.
            existing("team-a", Some(&text), {
                let mut v = all();
                v.reverse();
                v
            }),
            existing("team-b", Some(&text), vec!["REPLICATION".into()]),
            existing("team-c", Some(OTHER), all()),
            existing("ops", Some(POLICY), all()),
        ];
        let mut sorted_read = read.clone();
        for t in &mut sorted_read {
            t.state.applied_for.sort();
        }
        let plan = plan_templates("111111111111", "us-east-1", Ok(&sorted_read), &c, true);
        assert_eq!(
            outcomes(&plan),
            [
                ("ROOT", TemplateOutcome::Create),
                ("ops", TemplateOutcome::Unmanaged),
                ("team-a", TemplateOutcome::Unchanged),
                ("team-b", TemplateOutcome::Update),
                ("team-c/", TemplateOutcome::Update),
            ]
        );
        let b = &plan.rows[3];
        assert!(b
            .diff
            .as_deref()
            .unwrap()
            .contains("-appliedFor: [REPLICATION]"));
        assert!(!b.diff.as_deref().unwrap().contains("countNumber"), "{b:?}");
        let root = &plan.rows[0];
        assert!(root.current.is_none());
        assert!(root
            .diff
            .as_deref()
            .unwrap()
            .contains("+appliedFor: [CREATE_ON_PUSH"));
        assert!(plan.rows[1].template.is_none());
        assert!(plan.rows[1].diff.is_none());
        // No ROOT template with a policy yet, and ROOT is configured: not covered.
        assert_eq!(
            plan.finding.as_ref().unwrap().finding,
            Finding::NoCreationTemplate
        );
    }

    #[test]
    fn semantic_equality_and_a_template_without_policy() {
        let mut c = config(&["ROOT"]);
        // The stored text reformatted (keys reordered, spaced) is still unchanged.
        let text = builtin_text(&c);
        let reformatted = format!(" {}", ecr_lifecycle::canonical_pretty(&text).unwrap());
        let plan = plan_templates(
            "111111111111",
            "us-east-1",
            Ok(&[existing("ROOT", Some(&reformatted), all())]),
            &c,
            true,
        );
        assert_eq!(outcomes(&plan), [("ROOT", TemplateOutcome::Unchanged)]);
        assert!(plan.finding.is_none());
        // A ROOT template without a lifecycle policy is an update, and covers nothing.
        let plan = plan_templates(
            "111111111111",
            "us-east-1",
            Ok(&[existing("ROOT", None, all())]),
            &c,
            true,
        );
        assert_eq!(outcomes(&plan), [("ROOT", TemplateOutcome::Update)]);
        assert!(plan.finding.is_some());
        c.creation_templates.clear();
        // Without configured prefixes, an unmanaged ROOT with a policy covers the region.
        let plan = plan_templates(
            "111111111111",
            "us-east-1",
            Ok(&[existing("ROOT", Some(POLICY), all())]),
            &c,
            true,
        );
        assert_eq!(outcomes(&plan), [("ROOT", TemplateOutcome::Unmanaged)]);
        assert!(plan.finding.is_none());
        // Findings only when asked (audit).
        let plan = plan_templates("111111111111", "us-east-1", Ok(&[]), &c, false);
        assert!(plan.rows.is_empty() && plan.finding.is_none());
        let plan = plan_templates("111111111111", "us-east-1", Ok(&[]), &c, true);
        assert!(plan.finding.is_some());
    }

    #[test]
    fn configured_prefixes_cover_without_root() {
        let c = config(&["team-a", "team-b"]);
        let text = builtin_text(&c);
        let both = [
            existing("team-a", Some(&text), all()),
            existing("team-b/", Some(&format!("  {text}\n")), all()),
        ];
        let plan = plan_templates("111111111111", "us-east-1", Ok(&both), &c, true);
        assert!(plan.finding.is_none(), "{plan:?}");
        let plan = plan_templates("111111111111", "us-east-1", Ok(&both[..1]), &c, true);
        assert!(plan.finding.is_some());
    }

    #[test]
    fn a_failed_read_is_an_error_per_configured_prefix() {
        let c = config(&["team-b", "ROOT"]);
        let plan = plan_templates(
            "111111111111",
            "us-east-1",
            Err("ecr:DescribeRepositoryCreationTemplates: AccessDeniedException"),
            &c,
            true,
        );
        assert_eq!(
            outcomes(&plan),
            [
                ("ROOT", TemplateOutcome::Error),
                ("team-b", TemplateOutcome::Error)
            ]
        );
        assert!(plan.rows[0]
            .error
            .as_deref()
            .unwrap()
            .contains("AccessDenied"));
        assert!(plan.finding.is_none(), "unknown, not a finding");
    }
}
