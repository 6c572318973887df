//! The JUnit XML view of a report (`--output junit`, `--junit FILE`), for CI test report tools
//! such as CodeBuild report groups: one `testsuite` per account-region, one `testcase` per
//! repository, named after the repository.
//!
//! What fails: `error` and `blocked` always; in `plan` and `audit` also `create` and `update`
//! (drift from the template); in `audit` also findings other than `exempt`; in `apply` and
//! `restore` a `create`/`update` that was not written. Repositories the run leaves alone on
//! purpose (`excluded`, `unmatched`) and repositories deleted during the run (`gone`) are
//! `skipped`. A skipped target (an account or region
//! that could not be visited) is a test case with an `error`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use super::{Command, Report};
use crate::model::{Finding, Outcome, RepoResult, Skipped};

/// The JUnit XML document of `report`.
pub fn render(report: &Report) -> String {
    let mut junit = quick_junit::Report::new(format!("ecr-fleet {}", report.command.as_str()));
    if let Some(time) = elapsed(report) {
        junit.set_time(time);
    }
    let mut suites: BTreeMap<(&str, Option<&str>), TestSuite> = BTreeMap::new();
    for r in &report.repositories {
        suites
            .entry((r.account_id.as_str(), Some(r.region.as_str())))
            .or_insert_with(|| new_suite(&r.account_id, Some(&r.region)))
            .add_test_case(repository_case(report.command, r));
    }
    for s in &report.skipped {
        suites
            .entry((s.account_id.as_str(), s.region.as_deref()))
            .or_insert_with(|| new_suite(&s.account_id, s.region.as_deref()))
            .add_test_case(skipped_case(s));
    }
    junit.add_test_suites(suites.into_values());
    let mut text = junit
        .to_string()
        .unwrap_or_else(|e| format!("<!-- cannot render JUnit XML: {e} -->"));
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Write the JUnit view of `report` to `path`. Returns false (after saying why on stderr) when
/// it cannot be written: the run's result is still on stdout, and the caller exits 1.
pub fn write_file(report: &Report, path: Option<&Path>) -> bool {
    let Some(path) = path else {
        return true;
    };
    match std::fs::write(path, render(report)) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("error: {}: cannot write JUnit report: {e}", path.display());
            false
        }
    }
}

/// `--junit FILE`'s directory must exist: checked before any AWS call.
pub fn check_path(path: Option<&Path>) -> anyhow::Result<()> {
    if let Some(path) = path {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            anyhow::bail!(
                "--junit: {}: directory {} does not exist",
                path.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

fn elapsed(report: &Report) -> Option<Duration> {
    let start = report.started_at.parse::<jiff::Timestamp>().ok()?;
    let end = report.finished_at.parse::<jiff::Timestamp>().ok()?;
    let seconds = end.duration_since(start).as_secs_f64();
    (seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

fn suite_name(account: &str, region: Option<&str>) -> String {
    match region {
        Some(region) => format!("{account}/{region}"),
        None => account.to_string(),
    }
}

fn new_suite(account: &str, region: Option<&str>) -> TestSuite {
    let mut suite = TestSuite::new(suite_name(account, region));
    suite.add_property(Property::new("account_id", account));
    if let Some(region) = region {
        suite.add_property(Property::new("region", region));
    }
    suite
}

fn finding_name(f: Finding) -> String {
    serde_json::to_value(f)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Why a repository fails, if it does: (type, message, details).
fn failure(command: Command, r: &RepoResult) -> Option<(String, String, Option<String>)> {
    let checks = command.is_read_only();
    let writes = !checks;
    let template = r.template.as_deref().unwrap_or("-");
    let mut reasons: Vec<(String, String)> = Vec::new();
    let mut details = String::new();
    match r.outcome {
        Outcome::Error => reasons.push((
            "error".into(),
            r.error.clone().unwrap_or_else(|| "failed".into()),
        )),
        Outcome::Blocked => {
            reasons.push((
                "blocked".into(),
                format!(
                    "template {template} would expire or archive {} protected image(s)",
                    r.protected_images.len()
                ),
            ));
            for p in &r.protected_images {
                let _ = writeln!(
                    details,
                    "{} [{}]: {} by rule {} ({})",
                    p.image_digest,
                    p.image_tags.join(","),
                    p.action,
                    p.rule_priority,
                    p.reason
                );
            }
        }
        Outcome::Create | Outcome::Update if checks => reasons.push((
            r.outcome.as_str().into(),
            if r.outcome == Outcome::Create {
                format!("no lifecycle policy: template {template} would be created")
            } else {
                format!("the lifecycle policy differs from template {template}")
            },
        )),
        Outcome::Create | Outcome::Update if writes && !r.applied => reasons.push((
            r.outcome.as_str().into(),
            r.error.clone().unwrap_or_else(|| {
                format!(
                    "template {template} was not written ({})",
                    r.outcome.as_str()
                )
            }),
        )),
        _ => {}
    }
    if let Some(diff) = &r.diff {
        if !reasons.is_empty() {
            details.push_str(diff);
        }
    }
    if command == Command::Audit {
        let findings: Vec<String> = r
            .findings
            .iter()
            .filter(|f| **f != Finding::Exempt)
            .map(|f| finding_name(*f))
            .collect();
        if !findings.is_empty() {
            reasons.push((
                "finding".into(),
                format!("findings: {}", findings.join(", ")),
            ));
        }
    }
    if reasons.is_empty() {
        return None;
    }
    let ty = reasons
        .iter()
        .map(|(t, _)| t.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let message = reasons
        .iter()
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Some((ty, message, (!details.is_empty()).then_some(details)))
}

fn repository_case(command: Command, r: &RepoResult) -> TestCase {
    let status = if let Some((ty, message, details)) = failure(command, r) {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        s.set_type(ty).set_message(message);
        if let Some(d) = details {
            s.set_description(d);
        }
        s
    } else if matches!(
        r.outcome,
        Outcome::Excluded | Outcome::Unmatched | Outcome::Gone
    ) {
        let mut s = TestCaseStatus::skipped();
        s.set_type(r.outcome.as_str()).set_message(match r.outcome {
            Outcome::Excluded => "carries the exception tag: left alone",
            Outcome::Gone => "the repository was deleted during the run",
            _ => "no [[match]] applies: left alone",
        });
        s
    } else {
        TestCaseStatus::success()
    };
    let mut case = TestCase::new(r.repository.as_str(), status);
    case.set_classname(suite_name(&r.account_id, Some(&r.region)));
    case
}

fn skipped_case(s: &Skipped) -> TestCase {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
    status
        .set_type("skipped")
        .set_message(s.error.as_str())
        .set_description(s.error.as_str());
    let name = suite_name(&s.account_id, s.region.as_deref());
    let mut case = TestCase::new(name.as_str(), status);
    case.set_classname(name);
    case
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProtectedImage;
    use crate::report::Summary;

    fn row(account: &str, region: &str, name: &str, outcome: Outcome) -> RepoResult {
        let mut r = RepoResult::new(account, region, name, Some("standard".into()));
        r.outcome = outcome;
        if outcome.is_write() {
            r.diff = Some("-old\n+new\n".into());
        }
        r
    }

    fn report(command: Command, rows: Vec<RepoResult>, skipped: Vec<Skipped>) -> Report {
        let mut r = Report {
            schema_version: crate::report::SCHEMA_VERSION,
            command,
            started_at: "2026-11-22T10:00:00Z".into(),
            finished_at: "2026-11-22T10:00:09Z".into(),
            summary: Summary::default(),
            repositories: rows,
            skipped,
            regions: vec!["us-east-1".into()],
            disabled_regions: Vec::new(),
            notices: Vec::new(),
            backup_file: None,
            shard: None,
        };
        r.tally();
        r
    }

    fn case<'a>(xml: &'a str, name: &str) -> &'a str {
        let open = format!("<testcase name=\"{name}\"");
        let start = xml.find(&open).unwrap_or_else(|| panic!("{name} in {xml}"));
        let rest = &xml[start..];
        let tag_end = rest.find('>').unwrap();
        if rest[..=tag_end].ends_with("/>") {
            return &rest[..=tag_end];
        }
        &rest[..rest.find("</testcase>").unwrap() + "</testcase>".len()]
    }

    #[test]
    fn plan_drift_and_errors_fail_left_alone_is_skipped() {
        let mut err = row("111111111111", "us-east-1", "e", Outcome::Error);
        err.error = Some("GetLifecyclePolicy: AccessDenied: no".into());
        let mut blocked = row("111111111111", "us-east-1", "b", Outcome::Blocked);
        blocked.protected_images.push(ProtectedImage {
            image_digest: "sha256:abc".into(),
            image_tags: vec!["v1".into()],
            action: "expire".into(),
            rule_priority: 2,
            reason: "tag v*".into(),
            consumers: Vec::new(),
        });
        let r = report(
            Command::Plan,
            vec![
                row("111111111111", "us-east-1", "c", Outcome::Create),
                row("111111111111", "us-east-1", "u", Outcome::Update),
                row("111111111111", "us-east-1", "ok", Outcome::Unchanged),
                row("111111111111", "us-east-1", "x", Outcome::Excluded),
                row("111111111111", "us-east-1", "n", Outcome::Unmatched),
                err,
                blocked,
                row("111111111111", "eu-west-1", "other", Outcome::Unchanged),
            ],
            vec![Skipped {
                account_id: "222222222222".into(),
                region: None,
                error: "AssumeRole: AccessDenied: not allowed".into(),
            }],
        );
        let xml = render(&r);
        assert!(xml.starts_with("<?xml"), "{xml}");
        assert!(
            xml.contains(
                r#"<testsuites name="ecr-fleet plan" tests="9" skipped="2" failures="4" errors="1""#
            ),
            "{xml}"
        );
        assert!(xml.contains(
            r#"<testsuite name="111111111111/us-east-1" tests="7" skipped="2" errors="0" failures="4""#
        ));
        assert!(xml.contains(r#"<testsuite name="111111111111/eu-west-1" tests="1""#));
        assert!(xml.contains(r#"<testsuite name="222222222222" tests="1""#));
        assert!(case(&xml, "c").contains(r#"<failure message="no lifecycle policy"#));
        assert!(case(&xml, "c").contains("+new"));
        assert!(case(&xml, "u").contains(r#"type="update""#));
        assert!(case(&xml, "e").contains("AccessDenied: no"));
        assert!(case(&xml, "b").contains("sha256:abc [v1]: expire by rule 2 (tag v*)"));
        assert!(!case(&xml, "ok").contains("<failure"));
        assert!(case(&xml, "x").contains(r#"<skipped message="carries the exception tag"#));
        assert!(case(&xml, "n").contains("<skipped"));
        assert!(case(&xml, "222222222222").contains(r#"<error message="AssumeRole"#));
    }

    #[test]
    fn apply_fails_only_what_it_did_not_write() {
        let mut written = row("111111111111", "us-east-1", "w", Outcome::Update);
        written.applied = true;
        let mut interrupted = row("111111111111", "us-east-1", "i", Outcome::Create);
        interrupted.error = Some("not written: interrupted".into());
        let xml = render(&report(Command::Apply, vec![written, interrupted], vec![]));
        assert!(!case(&xml, "w").contains("<failure"), "{xml}");
        assert!(case(&xml, "i").contains(r#"message="not written: interrupted""#));
    }

    #[test]
    fn audit_findings_fail_except_exempt() {
        let mut drift = row("111111111111", "us-east-1", "d", Outcome::Unchanged);
        drift.findings = vec![Finding::NoTaggedCap];
        let mut exempt = row("111111111111", "us-east-1", "x", Outcome::Excluded);
        exempt.findings = vec![Finding::Exempt];
        let xml = render(&report(Command::Audit, vec![drift, exempt], vec![]));
        assert!(
            case(&xml, "d")
                .contains(r#"<failure message="findings: no_tagged_cap" type="finding""#),
            "{xml}"
        );
        assert!(!case(&xml, "x").contains("<failure"), "{xml}");
        // Not findings in plan.
        let mut drift = row("111111111111", "us-east-1", "d", Outcome::Unchanged);
        drift.findings = vec![Finding::NoTaggedCap];
        let xml = render(&report(Command::Plan, vec![drift], vec![]));
        assert!(!case(&xml, "d").contains("<failure"), "{xml}");
    }

    #[test]
    fn names_are_escaped() {
        let xml = render(&report(
            Command::Plan,
            vec![row(
                "111111111111",
                "us-east-1",
                "a<b>&\"c",
                Outcome::Create,
            )],
            vec![],
        ));
        assert!(xml.contains("name=\"a&lt;b&gt;&amp;&quot;c\""), "{xml}");
    }
}
