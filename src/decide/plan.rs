//! The planner: from what the inventory saw to one outcome per repository. Pure: no AWS, no
//! I/O. Every view renders the `RepoResult`s produced here.

use ecr_lifecycle::{semantically_equal, Image, ImageAction};
use jiff::Timestamp;

use super::diff::{intern_diff, policy_diff};
use super::inuse::InUseIndex;
use super::safety::protected_images;
use super::unused::unused_images;
use crate::config::{Config, Disposition};
use crate::model::{Consumer, Finding, Impact, Outcome, RepoResult};

/// What the inventory learned about one repository. Fields stay `None` when they were not
/// needed (no policy read for excluded or unmatched repositories) or could not be read.
#[derive(Debug, Clone)]
pub struct RepoFacts {
    pub account_id: String,
    pub region: String,
    pub name: String,
    pub disposition: Option<Disposition>,
    /// `Some(None)`: read, and the repository has no policy.
    pub current_policy: Option<Option<String>>,
    pub images: Option<Vec<Image>>,
    pub error: Option<String>,
    /// The repository disappeared while it was being read (RepositoryNotFoundException).
    pub gone: bool,
}

/// Options that change what the planner computes.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions<'a> {
    pub now: Timestamp,
    /// Compute content findings (audit).
    pub findings: bool,
    /// The complete in-use index (`[safety] in_use`); `None` when not asked for.
    pub in_use: Option<&'a InUseIndex>,
}

pub fn plan(facts: Vec<RepoFacts>, config: &Config, options: PlanOptions) -> Vec<RepoResult> {
    let mut out: Vec<RepoResult> = facts
        .into_iter()
        .map(|f| plan_one(f, config, options))
        .collect();
    out.sort_by(|a, b| a.key().cmp(&b.key()));
    out
}

pub fn plan_one(facts: RepoFacts, config: &Config, options: PlanOptions) -> RepoResult {
    let template = facts
        .disposition
        .as_ref()
        .and_then(|d| d.template().map(str::to_string));
    let mut result = RepoResult::new(&facts.account_id, &facts.region, &facts.name, template);
    result.current_policy = facts.current_policy.clone().flatten();
    if facts.gone {
        result.outcome = Outcome::Gone;
        return result;
    }
    if let Some(err) = facts.error {
        result.error = Some(err);
        return result;
    }
    let Some(disposition) = facts.disposition else {
        result.error = Some("repository tags could not be read".to_string());
        return result;
    };
    let template_name = match disposition {
        Disposition::Excluded { .. } => {
            result.outcome = Outcome::Excluded;
            if options.findings {
                result.findings.push(Finding::Exempt);
            }
            return result;
        }
        Disposition::Unmatched => {
            result.outcome = Outcome::Unmatched;
            // A whole-organization audit reads unmatched repositories too (plan does not).
            if options.findings {
                if let Some(current) = &facts.current_policy {
                    result.findings = content_findings(current.as_deref(), Outcome::Unmatched);
                }
                if let Some(images) = &facts.images {
                    add_unused(&mut result, images, config, options);
                }
            }
            return result;
        }
        Disposition::Managed { template } => template,
    };
    let Some(template) = config.templates.get(&template_name) else {
        result.error = Some(format!("template {template_name:?} is not loaded"));
        return result;
    };
    let Some(current) = facts.current_policy else {
        result.error = Some("the current lifecycle policy could not be read".to_string());
        return result;
    };
    result.outcome = match &current {
        None => Outcome::Create,
        Some(text) if semantically_equal(text, &template.text) => Outcome::Unchanged,
        Some(_) => Outcome::Update,
    };
    if result.outcome.is_write() {
        result.diff = Some(intern_diff(policy_diff(
            current.as_deref(),
            Some(&template.text),
        )));
    }
    if options.findings {
        result.findings = content_findings(current.as_deref(), result.outcome);
    }
    if let Some(images) = &facts.images {
        let template_actions = ecr_lifecycle::evaluate(&template.policy, images, options.now);
        result.impact = Some(Box::new(impact(
            images,
            &template_actions,
            config.price_per_gb_month,
        )));
        if options.findings {
            // No policy: nothing expires. A policy our validator rejects: unknown, not zero.
            result.current_impact = match current.as_deref() {
                None => Some(Box::new(impact(images, &[], config.price_per_gb_month))),
                Some(text) => ecr_lifecycle::parse_policy(text).ok().map(|p| {
                    let actions = ecr_lifecycle::evaluate(&p, images, options.now);
                    Box::new(impact(images, &actions, config.price_per_gb_month))
                }),
            };
        }
        if result.outcome.is_write() {
            let consumers = consumers_of(&result, images, options);
            result.protected_images = protected_images(
                &config.safety,
                images,
                &template_actions,
                options.now,
                &consumers,
                options.in_use.map_or(&[][..], |i| &i.incomplete),
            );
            if !result.protected_images.is_empty() {
                result.outcome = Outcome::Blocked;
            }
        }
        if options.findings {
            add_unused(&mut result, images, config, options);
        }
    }
    result
}

/// Consumers of each image of the row's repository (empty without an index).
fn consumers_of(result: &RepoResult, images: &[Image], options: PlanOptions) -> Vec<Vec<Consumer>> {
    match options.in_use {
        Some(index) => index.consumers(
            &result.account_id,
            &result.region,
            &result.repository,
            images,
        ),
        None => Vec::new(),
    }
}

/// The unused-image findings of `audit --images`.
fn add_unused(result: &mut RepoResult, images: &[Image], config: &Config, options: PlanOptions) {
    let in_use: Vec<bool> = consumers_of(result, images, options)
        .iter()
        .map(|c| !c.is_empty())
        .collect();
    let unused = unused_images(
        images,
        &in_use,
        options.now,
        config.unused_after_days,
        config.price_per_gb_month,
    );
    for (bucket, finding) in [
        (&unused.never_pulled, Finding::UnusedNeverPulled),
        (&unused.not_pulled, Finding::UnusedNotPulled),
        (&unused.untagged, Finding::UnusedUntagged),
    ] {
        if bucket.images > 0 {
            result.findings.push(finding);
        }
    }
    result.unused = Some(Box::new(unused));
}

/// Findings about a repository's current policy. A repository that already carries its
/// template has none: the template is the operator's choice (and `validate` checks it), so a
/// converged fleet audits clean.
fn content_findings(current: Option<&str>, outcome: Outcome) -> Vec<Finding> {
    let mut findings = Vec::new();
    if outcome == Outcome::Unchanged {
        return findings;
    }
    match current {
        None => findings.push(Finding::NoPolicy),
        Some(text) => match ecr_lifecycle::parse_policy(text) {
            Ok(policy) => {
                let coverage = ecr_lifecycle::coverage(&policy);
                if !coverage.expires_untagged {
                    findings.push(Finding::NoUntaggedExpiry);
                }
                if !coverage.caps_tagged {
                    findings.push(Finding::NoTaggedCap);
                }
            }
            Err(_) => findings.push(Finding::UnrecognisedPolicy),
        },
    }
    if outcome == Outcome::Update {
        findings.push(Finding::DriftFromTemplate);
    }
    findings
}

const BYTES_PER_GB: f64 = 1024.0 * 1024.0 * 1024.0;

pub fn impact(images: &[Image], actions: &[ImageAction], price_per_gb_month: f64) -> Impact {
    let totals = ecr_lifecycle::impact(images, actions);
    Impact {
        images: images.len() as u64,
        bytes: images.iter().map(|i| i.size_bytes).sum(),
        expiring_images: totals.expiring_images,
        expiring_bytes: totals.expiring_bytes,
        transitioning_images: totals.transitioning_images,
        transitioning_bytes: totals.transitioning_bytes,
        monthly_saving_usd: round_cents(
            totals.expiring_bytes as f64 / BYTES_PER_GB * price_per_gb_month,
        ),
    }
}

fn round_cents(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{classify, SafetyConfig};
    use crate::decide::inuse::SourceFailure;
    use std::collections::BTreeMap;
    use std::path::Path;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn config(extra: &str) -> Config {
        let text = format!(
            r#"
regions = ["us-east-1"]
[[match]]
template = "untagged-cleanup"
names = ["prod-*", "*/prod-*"]
[[match]]
template = "untagged-cleanup"
tags = {{ "lifecycle-class" = ["standard", "default"] }}
{extra}
"#
        );
        Config::parse(&text, Path::new("test.toml")).expect("valid config")
    }

    #[test]
    fn exception_tag_excludes_and_remembers_the_template() {
        let c = config("");
        let d = classify(&c, "prod-api", &tags(&[("ecr-fleet:exempt", "yes")]));
        assert_eq!(
            d,
            Disposition::Excluded {
                template: Some("untagged-cleanup".into())
            }
        );
    }

    #[test]
    fn names_globs_cross_slashes_and_are_case_sensitive() {
        let c = config("");
        assert!(matches!(
            classify(&c, "team/prod-api", &tags(&[])),
            Disposition::Managed { .. }
        ));
        assert!(matches!(
            classify(&c, "a/b/prod-x", &tags(&[])),
            Disposition::Managed { .. }
        ));
        assert_eq!(classify(&c, "Prod-api", &tags(&[])), Disposition::Unmatched);
        assert_eq!(
            classify(&c, "xprod-api", &tags(&[])),
            Disposition::Unmatched
        );
    }

    #[test]
    fn tag_match_needs_one_of_the_listed_values() {
        let c = config("");
        assert!(matches!(
            classify(&c, "svc", &tags(&[("lifecycle-class", "default")])),
            Disposition::Managed { .. }
        ));
        assert_eq!(
            classify(&c, "svc", &tags(&[("lifecycle-class", "gold")])),
            Disposition::Unmatched
        );
        assert_eq!(classify(&c, "svc", &tags(&[])), Disposition::Unmatched);
    }

    #[test]
    fn names_and_tags_together_need_both_and_first_match_wins() {
        let c = config(
            r#"
[[match]]
template = "untagged-cleanup"
names = ["svc-*"]
tags = { team = ["*"] }
"#,
        );
        let m = c.match_repository("svc-a", &tags(&[("team", "x")]));
        assert!(m.is_some_and(|m| m.names.as_ref().is_some_and(|n| n[0].pattern == "svc-*")));
        assert!(c.match_repository("svc-a", &tags(&[])).is_none());
        assert!(c
            .match_repository("prod-a", &tags(&[("team", "x")]))
            .is_some_and(|m| m.names.as_ref().is_some_and(|n| n[0].pattern == "prod-*")));
    }

    #[test]
    fn exception_value_must_match_when_set() {
        let c = config("[exception]\ntag = \"keep\"\nvalue = \"true\"\n");
        assert_eq!(
            classify(&c, "prod-a", &tags(&[("keep", "false")])),
            Disposition::Managed {
                template: "untagged-cleanup".into()
            }
        );
        assert!(matches!(
            classify(&c, "prod-a", &tags(&[("keep", "true")])),
            Disposition::Excluded { .. }
        ));
    }

    fn facts(current: Option<Option<&str>>) -> RepoFacts {
        RepoFacts {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            name: "prod-api".into(),
            disposition: Some(Disposition::Managed {
                template: "untagged-cleanup".into(),
            }),
            current_policy: current.map(|c| c.map(str::to_string)),
            images: None,
            error: None,
            gone: false,
        }
    }

    fn opts() -> PlanOptions<'static> {
        PlanOptions {
            now: Timestamp::UNIX_EPOCH,
            findings: true,
            in_use: None,
        }
    }

    #[test]
    fn outcomes_create_update_unchanged() {
        let c = config("");
        let template = c.templates.get("untagged-cleanup").unwrap().text.clone();
        let r = plan_one(facts(Some(None)), &c, opts());
        assert_eq!(r.outcome, Outcome::Create);
        assert!(r.diff.as_deref().unwrap().contains("+  \"rules\""));
        assert_eq!(r.findings, vec![Finding::NoPolicy]);

        // Same policy, reformatted and with keys reordered: unchanged.
        let value: serde_json::Value = serde_json::from_str(&template).unwrap();
        let compact = serde_json::to_string(&value).unwrap();
        let r = plan_one(facts(Some(Some(&compact))), &c, opts());
        assert_eq!(r.outcome, Outcome::Unchanged);
        assert!(r.diff.is_none());

        let other = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["ci-"],"countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}"#;
        let r = plan_one(facts(Some(Some(other))), &c, opts());
        assert_eq!(r.outcome, Outcome::Update);
        let diff = r.diff.unwrap();
        assert!(diff.starts_with("--- current\n+++ template\n"), "{diff}");
        assert!(
            diff.contains("-        \"countType\": \"imageCountMoreThan\",\n"),
            "{diff}"
        );
        assert!(
            diff.contains("+        \"countUnit\": \"days\",\n"),
            "{diff}"
        );
        // A count cap on `ci-` tags: tagged images capped, untagged never expire.
        assert_eq!(
            r.findings,
            vec![Finding::NoUntaggedExpiry, Finding::DriftFromTemplate]
        );
    }

    #[test]
    fn unreadable_facts_are_errors_not_guesses() {
        let c = config("");
        let mut f = facts(None);
        let r = plan_one(f.clone(), &c, opts());
        assert_eq!(r.outcome, Outcome::Error);
        f.error = Some("AccessDeniedException: no".into());
        let r = plan_one(f, &c, opts());
        assert_eq!(r.error.as_deref(), Some("AccessDeniedException: no"));
    }

    #[test]
    fn results_are_sorted_by_account_region_name() {
        let c = config("");
        let mut a = facts(Some(None));
        a.name = "z".into();
        let mut b = facts(Some(None));
        b.name = "a".into();
        let mut d = facts(Some(None));
        d.account_id = "000000000000".into();
        let out = plan(vec![a, b, d], &c, opts());
        let keys: Vec<_> = out
            .iter()
            .map(|r| (r.account_id.as_str(), r.repository.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("000000000000", "prod-api"),
                ("111111111111", "a"),
                ("111111111111", "z")
            ]
        );
    }

    fn image(digest: &str, tags: &[&str], pulled: Option<&str>) -> Image {
        Image {
            digest: digest.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            size_bytes: 1 << 30,
            last_pulled_at: pulled.map(|p| p.parse().unwrap()),
            status: ecr_lifecycle::ImageStatus::Active,
            last_archived_at: None,
            last_activated_at: None,
            manifest_media_type: None,
            referenced_by_manifest_lists: Vec::new(),
        }
    }

    #[test]
    fn safety_protects_by_tag_glob_and_by_recent_pull() {
        let c = config("[safety]\nprotected_tags = [\"release-*\"]\npulled_within_days = 30\n");
        let images = vec![
            image("sha256:a", &["release-1", "sha-1"], None),
            image("sha256:b", &[], Some("2026-11-10T00:00:00Z")),
            image("sha256:c", &[], Some("2026-09-01T00:00:00Z")),
            image("sha256:d", &["sha-2"], None),
        ];
        let actions: Vec<ImageAction> = (0..4)
            .map(|index| ImageAction {
                index,
                action: ecr_lifecycle::ActionType::Expire,
                rule_priority: 1,
            })
            .collect();
        let now: Timestamp = "2026-11-22T00:00:00Z".parse().unwrap();
        let protected = protected_images(&c.safety, &images, &actions, now, &[], &[]);
        let digests: Vec<&str> = protected.iter().map(|p| p.image_digest.as_str()).collect();
        assert_eq!(digests, ["sha256:a", "sha256:b"]);
        assert!(
            protected[0].reason.contains("release-*"),
            "{}",
            protected[0].reason
        );
        assert!(
            protected[1].reason.starts_with("pulled within 30 days"),
            "{}",
            protected[1].reason
        );
        // Without [safety] nothing is protected.
        assert!(
            protected_images(&SafetyConfig::default(), &images, &actions, now, &[], &[]).is_empty()
        );
    }

    #[test]
    fn an_image_run_in_another_account_blocks_and_names_its_consumer() {
        use crate::decide::inuse::parse_image_uri;
        let c = config("[safety]\nin_use = [\"ecs\"]\n");
        let mut index = InUseIndex::default();
        let consumer = Consumer {
            source: crate::model::InUseSource::Ecs,
            account_id: "222222222222".into(),
            region: "us-east-1".into(),
            name: "prod/web".into(),
        };
        index.add(
            parse_image_uri("111111111111.dkr.ecr.us-east-1.amazonaws.com/prod-api:v1").unwrap(),
            consumer.clone(),
        );
        let mut f = facts(Some(None));
        // untagged-cleanup expires untagged images after a while: the v1 image is tagged, so
        // make the service run an untagged digest instead.
        let old = "2020-01-01T00:00:00Z";
        let mut running = image("sha256:run", &[], None);
        running.pushed_at = old.parse().unwrap();
        let mut idle = image("sha256:idle", &[], None);
        idle.pushed_at = old.parse().unwrap();
        f.images = Some(vec![running, idle]);
        index.add(
            parse_image_uri("111111111111.dkr.ecr.us-east-1.amazonaws.com/prod-api@sha256:run")
                .unwrap(),
            consumer.clone(),
        );
        let options = PlanOptions {
            now: "2026-11-22T00:00:00Z".parse().unwrap(),
            findings: true,
            in_use: Some(&index),
        };
        let r = plan_one(f.clone(), &c, options);
        assert_eq!(r.outcome, Outcome::Blocked, "{r:?}");
        assert_eq!(r.protected_images.len(), 1);
        let p = &r.protected_images[0];
        assert_eq!(p.image_digest, "sha256:run");
        assert_eq!(p.consumers, vec![consumer]);
        assert_eq!(p.reason, "in use by ecs 222222222222 us-east-1 prod/web");
        // The idle image is an unused finding; the running one is not.
        let unused = r.unused.as_ref().unwrap();
        assert_eq!(unused.total.images, 1);
        assert_eq!(unused.in_use_excluded, 1);
        assert!(r.findings.contains(&Finding::UnusedNeverPulled));
        assert!(r.findings.contains(&Finding::UnusedUntagged));
        // Without the consumer the write goes ahead.
        let empty = InUseIndex::default();
        let r = plan_one(
            f.clone(),
            &c,
            PlanOptions {
                in_use: Some(&empty),
                ..options
            },
        );
        assert_eq!(r.outcome, Outcome::Create);
        // An index that could not be completed protects whatever would be removed.
        let mut partial = InUseIndex::default();
        partial.incomplete.push(SourceFailure {
            source: Some(crate::model::InUseSource::Ecs),
            account_id: "333333333333".into(),
            region: Some("us-east-1".into()),
            error: "ecs:ListClusters: AccessDeniedException".into(),
        });
        let r = plan_one(
            f,
            &c,
            PlanOptions {
                in_use: Some(&partial),
                ..options
            },
        );
        assert_eq!(r.outcome, Outcome::Blocked);
        assert_eq!(r.protected_images.len(), 2);
        assert!(
            r.protected_images[0].reason.starts_with("may be in use"),
            "{:?}",
            r.protected_images
        );
    }

    #[test]
    fn audit_reads_unmatched_repositories_for_findings() {
        let c = config("");
        let mut f = facts(Some(None));
        f.name = "scratch".into();
        f.disposition = Some(Disposition::Unmatched);
        let r = plan_one(f.clone(), &c, opts());
        assert_eq!(r.outcome, Outcome::Unmatched);
        assert_eq!(r.findings, vec![Finding::NoPolicy]);
        // plan leaves them alone.
        let r = plan_one(
            f.clone(),
            &c,
            PlanOptions {
                findings: false,
                ..opts()
            },
        );
        assert!(r.findings.is_empty());
        let capped = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["ci-"],"countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}"#;
        f.current_policy = Some(Some(capped.into()));
        let r = plan_one(f, &c, opts());
        assert_eq!(r.findings, vec![Finding::NoUntaggedExpiry]);
    }

    #[test]
    fn impact_prices_expiring_bytes_per_gib_month() {
        let images = vec![image("sha256:a", &[], None), image("sha256:b", &[], None)];
        let actions = vec![ImageAction {
            index: 1,
            action: ecr_lifecycle::ActionType::Expire,
            rule_priority: 1,
        }];
        let i = impact(&images, &actions, 0.10);
        assert_eq!(
            (i.images, i.expiring_images, i.expiring_bytes),
            (2, 1, 1 << 30)
        );
        assert!((i.monthly_saving_usd - 0.10).abs() < 1e-9);
    }
}
